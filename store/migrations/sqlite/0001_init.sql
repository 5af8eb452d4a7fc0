-- Users, namespaces and their members, image repositories and build rules.
-- Keep in step with ../postgres/0001_init.sql: same tables, columns and constraints.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    token_hash  TEXT    NOT NULL UNIQUE,
    site_admin  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE namespaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE members (
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (namespace_id, user_id)
);

CREATE INDEX members_user_id ON members (user_id);

CREATE TABLE repositories (
    id           INTEGER PRIMARY KEY,
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    UNIQUE (namespace_id, name)
);

-- seq orders rules by creation; id is the public, random identifier.
CREATE TABLE rules (
    seq               INTEGER PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    repository_id     INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    source_provider   TEXT    NOT NULL,
    source_owner      TEXT    NOT NULL,
    source_repository TEXT    NOT NULL,
    branches          TEXT    NOT NULL,
    tags              BOOLEAN NOT NULL,
    tag_template      TEXT    NOT NULL,
    dockerfile_path   TEXT    NOT NULL,
    context_path      TEXT    NOT NULL,
    build_args        TEXT    NOT NULL,
    sanitize_ref      BOOLEAN NOT NULL,
    timeout           TEXT    NOT NULL,
    webhook_secret    TEXT    NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

CREATE INDEX rules_repository_id ON rules (repository_id, seq);
