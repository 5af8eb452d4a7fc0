-- Access that can be taken back: disabled users, one token per user with its dates, and the
-- managed webhooks a rule could not remove when its source moved.
-- Keep in step with ../sqlite/0004_access.sql.

-- A disabled user's token_hash is replaced by a value no token hashes to, so enabling the user
-- again revives no old token.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
-- NULL for tokens made before this migration, and for a token never used.
ALTER TABLE users ADD COLUMN token_created_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN token_last_used_at TIMESTAMPTZ;

-- JSON list of hooks left on a former source of the rule that could not be removed.
ALTER TABLE rules ADD COLUMN orphaned_hooks TEXT NOT NULL DEFAULT '[]';
