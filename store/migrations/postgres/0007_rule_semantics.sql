-- Keep in step with ../sqlite/0007_rule_semantics.sql.
-- What a rule means beyond branches and tags (issue #15): which tags and files start a build,
-- the tags a build adds, when a push is skipped, how builds of the rule run together, and how
-- often missed deliveries are looked for.
-- tag_patterns: JSON array of names, globs or /RE2/ entries; [] with tags = all tags.
ALTER TABLE rules ADD COLUMN tag_patterns TEXT NOT NULL DEFAULT '[]';
-- paths: JSON object {"include": [...], "ignore": [...]}, or '' for no path filter.
ALTER TABLE rules ADD COLUMN paths TEXT NOT NULL DEFAULT '';
-- tag_latest: '' (off) or 'default_branch'.
ALTER TABLE rules ADD COLUMN tag_latest TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN semver BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE rules ADD COLUMN skip_markers BOOLEAN NOT NULL DEFAULT TRUE;
-- run_policy: 'parallel', 'serial' or 'latest_only'.
ALTER TABLE rules ADD COLUMN run_policy TEXT NOT NULL DEFAULT 'parallel';
-- reconcile_every: a Go duration of at least one minute, or '' for off.
ALTER TABLE rules ADD COLUMN reconcile_every TEXT NOT NULL DEFAULT '';
