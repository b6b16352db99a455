#!/usr/bin/env bash
# Build stage, "secrets": configuration must never carry credentials. Any
# finding fails the run (reports/secrets.sarif).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
while IFS=: read -r file line _; do
  sarif_add credential error "looks like a credential" "$file" "$line"
done < <(git ls-files -z | xargs -0 grep -nIE 'AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|"(password|secret|token)"[[:space:]]*:' -- 2>/dev/null || true)
sarif_write config-secrets reports/secrets.sarif
