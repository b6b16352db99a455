#!/usr/bin/env bash
# Build stage, "code-quality": a tiny linter. Reports TODO/FIXME comments and
# over-long lines in src/ as SARIF notes in reports/quality.sarif (the
# pipeline has no code-quality gate, so they are informational).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

while IFS=: read -r file line text; do
  sarif_add todo-comment note "unfinished work: $(sed 's/^[[:space:]]*//' <<<"$text")" "$file" "$line"
done < <(grep -rnE --include='*.rs' '//.*\b(TODO|FIXME)\b' src || true)

while IFS=: read -r file line; do
  sarif_add long-line note "line longer than 100 characters" "$file" "$line"
done < <(find src -name '*.rs' -print0 | sort -z |
  xargs -0 -r awk 'length($0) > 100 { print FILENAME ":" FNR }')

sarif_write demo-lint reports/quality.sarif
