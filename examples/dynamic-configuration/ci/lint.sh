#!/usr/bin/env bash
# Build stage, "lint" (code quality): configuration files must end with a
# newline and hold no tabs or trailing spaces; findings are SARIF notes in
# reports/quality.sarif.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
while IFS=: read -r file line _; do
  sarif_add whitespace note "tab or trailing space" "$file" "$line"
done < <(grep -nE $'\t| +$' config/*.json config/*/*.json || true)
for f in config/*.json config/*/*.json; do
  [[ -z $(tail -c1 "$f") ]] || sarif_add final-newline note "no newline at the end" "$f" 1
done
sarif_write config-lint reports/quality.sarif
