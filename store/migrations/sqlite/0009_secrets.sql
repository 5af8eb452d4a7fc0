-- Build secrets: per namespace, write-only values that builds get through BuildKit's secret
-- mounts (RUN --mount=type=secret,id=NAME), never as build args.
-- Keep in step with ../postgres/0009_secrets.sql.

-- value_sealed is the value encrypted with SLIPWAY_SECRET_KEY (AES-GCM, bound to the
-- namespace's id and the name, so a value copied into another row does not open there).
CREATE TABLE secrets (
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    value_sealed TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_by   TEXT    NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

-- secrets: JSON array of the names of the namespace's secrets the rule's builds get.
ALTER TABLE rules ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';
