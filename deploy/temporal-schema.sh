#!/bin/sh
# Creates or upgrades Temporal's PostgreSQL schemas with the official temporal-sql-tool of the
# temporalio/admin-tools image, as the temporal-schema service of docker-compose.temporal.yml
# (the auto-setup image is deprecated). Safe to run on every start: a database that already
# exists keeps its data, and update-schema applies only the versions it lacks.
set -eu
: "${POSTGRES_SEEDS:=postgresql}" "${DB_PORT:=5432}" "${POSTGRES_USER:=temporal}" "${POSTGRES_PWD:=temporal}"
: "${TEMPORAL_DB:=temporal}" "${TEMPORAL_VISIBILITY_DB:=temporal_visibility}"
SCHEMA=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

sql() {
	temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
		-u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@"
}

setup() { # setup DATABASE SCHEMA_SUBDIR
	if sql --db "$1" create; then
		sql --db "$1" setup-schema -v 0.0
	else
		echo "database $1 exists: upgrading it"
	fi
	sql --db "$1" update-schema -d "$SCHEMA/$2/versioned"
}

setup "$TEMPORAL_DB" temporal
setup "$TEMPORAL_VISIBILITY_DB" visibility
echo "temporal schemas ready"
