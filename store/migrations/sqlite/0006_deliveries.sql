-- Webhook events that started a build, remembered for SLIPWAY_DELIVERY_RETENTION (longer than
-- Temporal keeps executions), so a late or replayed delivery answers with the build it
-- started and starts nothing. No foreign key to rules: a deleted rule takes its webhook with
-- it, and rows expire on their own.
-- Keep in step with ../postgres/0006_deliveries.sql.
CREATE TABLE deliveries (
	rule_id    TEXT NOT NULL,
	-- What the event means (the build id derived from the rule, ref and commit).
	event_key  TEXT NOT NULL,
	build_id   TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (rule_id, event_key)
);
CREATE INDEX deliveries_created_at ON deliveries (created_at);
