-- Keep in step with ../postgres/0012_rule_platforms.sql.
-- The platforms a rule builds, pushed as one image index (issue #17).
-- platforms: JSON array of "os/arch[/variant]" in normal form; [] builds the worker's own.
ALTER TABLE rules ADD COLUMN platforms TEXT NOT NULL DEFAULT '[]';
