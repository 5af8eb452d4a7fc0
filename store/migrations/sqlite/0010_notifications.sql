-- Outgoing notifications (webhooks a namespace's builds call when they start and end), the log
-- of their deliveries, and the public badge token of each rule.
-- Keep in step with ../postgres/0010_notifications.sql.

-- One receiver of a namespace's build events. rule_id NULL means every rule of the namespace;
-- a rule's own notifications go with the rule. The signing secret is sealed with the store's
-- secret box, bound to the id, and shown only when it is made.
CREATE TABLE notifications (
	seq           INTEGER PRIMARY KEY,
	id            TEXT    NOT NULL UNIQUE,
	namespace_id  INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
	rule_id       TEXT    REFERENCES rules (id) ON DELETE CASCADE,
	url           TEXT    NOT NULL,
	-- JSON array of event names.
	events        TEXT    NOT NULL,
	format        TEXT    NOT NULL,
	secret_sealed TEXT    NOT NULL,
	created_by    TEXT    NOT NULL,
	created_at    TIMESTAMP NOT NULL,
	updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX notifications_namespace_id ON notifications (namespace_id, seq);

-- One event sent to one notification, with its attempts so far; the last ones per
-- notification are kept (the store prunes the rest as new ones come).
CREATE TABLE notification_deliveries (
	seq              INTEGER PRIMARY KEY,
	id               TEXT    NOT NULL UNIQUE,
	notification_id  TEXT    NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
	event            TEXT    NOT NULL,
	build_id         TEXT    NOT NULL,
	-- pending (being tried), delivered, or failed (given up).
	status           TEXT    NOT NULL,
	attempts         INTEGER NOT NULL,
	last_http_status INTEGER NOT NULL DEFAULT 0,
	last_response    TEXT    NOT NULL DEFAULT '',
	last_error       TEXT    NOT NULL DEFAULT '',
	created_at       TIMESTAMP NOT NULL,
	updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX notification_deliveries_notification_id ON notification_deliveries (notification_id, seq);

-- The unguessable token of a rule's public status badge (/badges/TOKEN.svg); it goes with
-- the rule.
CREATE TABLE badges (
	rule_id TEXT NOT NULL PRIMARY KEY REFERENCES rules (id) ON DELETE CASCADE,
	token   TEXT NOT NULL UNIQUE
);
