-- Retention policies of image repositories: which pushed tags a repository's Temporal Schedule
-- deletes (rules as JSON, build.RetentionPolicy's), one per repository, gone with it.
-- Keep in step with ../postgres/0011_retention.sql.
CREATE TABLE retention_policies (
	repository_id INTEGER PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
	rules         TEXT NOT NULL,
	every         TEXT NOT NULL,
	updated_at    TIMESTAMP NOT NULL
);
