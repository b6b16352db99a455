#!/usr/bin/env bash
# Build stage, "secrets": nothing in the repository may look like a
# credential; any finding fails the run (reports/secrets.sarif).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
while IFS=: read -r file _; do
  sarif_add credential 9.0 "looks like a credential" "$file"
done < <(git ls-files -z | xargs -0 grep -lIE 'AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY' -- 2>/dev/null | sed 's/$/:/' || true)
sarif_write image-secrets reports/secrets.sarif
