#!/usr/bin/env bash
# Build stage, "unit-tests": runs `cargo test` and writes the results as JUnit
# XML to reports/unit.xml; fails, after writing the report, if a test failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

APP_VERSION=$(app_version)
export APP_VERSION CARGO_TARGET_DIR="$CACHE_DIR/target"
status=0
output=$(cargo test --locked 2>&1) || status=$?
printf '%s\n' "$output"

# One test case per "test NAME ... ok|FAILED" line; a failure carries what
# the test printed (cargo's "---- NAME stdout ----" section).
SUITE=unit
while read -r _ name _ result; do
  if [[ $result == ok ]]; then
    junit_case "$name"
  else
    details=$(awk -v start="---- $name stdout ----" \
      '$0 == start { on = 1; next } /^---- |^failures:$/ { on = 0 } on' <<<"$output")
    junit_case "$name" "${details:-test failed}"
  fi
done < <(grep -E '^test [^ ]+ \.\.\. (ok|FAILED)$' <<<"$output" || true)
# Tests that never ran (e.g. a compile error) are one failure.
if [[ $status -ne 0 && $JUNIT_FAILURES -eq 0 ]]; then
  junit_case "cargo test" "cargo test exited with $status: $(tail -n 20 <<<"$output")"
fi
junit_write unit reports/unit.xml
grep '^test result:' <<<"$output" || true
exit "$status"
