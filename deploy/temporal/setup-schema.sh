#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas up to the
# version this admin-tools image carries. Safe to run on every start and after an
# upgrade of the Temporal images (run it before the new server starts).
# Needs POSTGRES_SEEDS, DB_PORT, POSTGRES_USER and SQL_PASSWORD (read by temporal-sql-tool).
set -eu

SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  schema=${pair#*:}
  echo "Setting up database $db"
  sql_tool --db "$db" create
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "Temporal schemas are up to date"
