#!/usr/bin/env bash
# beta/gamma/prod, "migrate-db": brings the environment's "database" (the file
# $DEMO_STATE_DIR/<environment>/schema_version) up to date by applying, in
# order, each migrations/NNN_*.sql numbered above the stored version. It never
# goes backwards, so an older release (or a rollback) leaves a newer schema
# alone; on a rollback (CONVEYOR_ROLLBACK=1) it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

environment=${CONVEYOR_ENVIRONMENT:?CONVEYOR_ENVIRONMENT is not set}
if [[ ${CONVEYOR_ROLLBACK:-} == 1 ]]; then
  echo "rollback: migrations only go forward, leaving the $environment database as it is"
  exit 0
fi
dir="$STATE_DIR/$environment"
mkdir -p "$dir"

# Targets of one environment share its database: one migration at a time
# (a lock older than 30 s is taken to be left over by a killed run).
lock="$dir/migrate.lock"
locked=""
for _ in $(seq 300); do
  if mkdir "$lock" 2>/dev/null; then locked=1 && break; fi
  sleep 0.1
done
[[ -n $locked ]] || echo "taking over a stale lock: $lock"
trap 'rmdir "$lock" 2>/dev/null || true' EXIT

current=$(cat "$dir/schema_version" 2>/dev/null || echo 0)
version=$current
newest=0
for file in migrations/[0-9][0-9][0-9]_*.sql; do
  [[ -e $file ]] || continue
  number=$((10#$(basename "$file" | cut -c1-3)))
  newest=$number
  if ((number > version)); then
    echo "applying $file"
    version=$number
    echo "$version" >"$dir/schema_version.tmp"
    mv "$dir/schema_version.tmp" "$dir/schema_version"
  fi
done
if ((current > newest)); then
  echo "$environment database is at schema version $current, newer than this release's ($newest): leaving it"
elif ((version == current)); then
  echo "$environment database is up to date at schema version $current"
else
  echo "$environment database migrated from schema version $current to $version"
fi
