-- Where BuildKit keeps a rule's registry cache: '' for IMAGE:buildcache, 'off', or a reference.
ALTER TABLE rules ADD COLUMN cache TEXT NOT NULL DEFAULT '';
