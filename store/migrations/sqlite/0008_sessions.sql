-- Console sign-ins, and OAuth refresh of connected accounts.
--
-- Console sign-ins: one row per browser session. The cookie carries a random session id;
-- only its SHA-256 is kept, so a copy of the database signs nobody in. The CSRF token every
-- console form carries lives here too, and so does the state of an OAuth authorization in
-- flight (bound to the session that started it). A disabled or deleted user's sessions stop
-- working with the user.
-- Keep in step with ../postgres/0008_sessions.sql.
CREATE TABLE sessions (
	id_hash        TEXT PRIMARY KEY,
	user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	csrf_token     TEXT NOT NULL,
	created_at     TIMESTAMP NOT NULL,
	expires_at     TIMESTAMP NOT NULL,
	-- An OAuth authorization in flight: its state, PKCE verifier and what it connects.
	oauth_state    TEXT NOT NULL DEFAULT '',
	oauth_verifier TEXT NOT NULL DEFAULT '',
	oauth_target   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- An account connected by OAuth keeps its refresh token (sealed like the token, bound to the
-- account) and when its token expires (GitLab's last two hours), so it is refreshed and
-- sealed again before use. Accounts with a pasted token have neither.
ALTER TABLE accounts ADD COLUMN refresh_sealed TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN token_expires_at TIMESTAMP;

-- "Sign in with GitHub/GitLab": a provider user a Slipway user linked to themselves, by the
-- provider's numeric id (a login can be renamed and then taken by someone else).
CREATE TABLE identities (
	provider   TEXT NOT NULL,
	subject    TEXT NOT NULL,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	login      TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (provider, subject)
);
