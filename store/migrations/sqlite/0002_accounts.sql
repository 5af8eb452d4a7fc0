-- Connected GitHub and GitLab accounts (源代码授权) and the webhook a rule manages on its source.
-- Keep in step with ../postgres/0002_accounts.sql.

-- token_sealed is the provider token encrypted with SLIPWAY_SECRET_KEY (AES-GCM, bound to id).
CREATE TABLE accounts (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    provider     TEXT    NOT NULL,
    login        TEXT    NOT NULL,
    token_sealed TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

CREATE INDEX accounts_namespace_id ON accounts (namespace_id, seq);

ALTER TABLE rules ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN hook_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rules ADD COLUMN hook_state TEXT NOT NULL DEFAULT '';
