#!/usr/bin/env bash
# Build stage, "secrets": scans every tracked file for things that look like
# credentials and writes each hit as a SARIF error to reports/secrets.sarif.
# The pipeline fails the run on any finding. The secret itself is never
# printed, only where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

# Each pattern is split in two quoted halves, so this file never matches itself.
patterns=(
  "aws-access-key-id|AWS access key id|AK""IA[0-9A-Z]{16}"
  "private-key|private key block|-----BEGIN ""[A-Z ]*PRIVATE KEY-----"
  "slack-token|Slack token|xo""x[bpoas]-[0-9A-Za-z-]{10,}"
)
for entry in "${patterns[@]}"; do
  IFS='|' read -r rule what regex <<<"$entry"
  while IFS=: read -r file line _; do
    echo "possible $what in $file:$line"
    sarif_add "$rule" error "possible $what (value not shown)" "$file" "$line"
  done < <(git ls-files -z | xargs -0 -r grep -nHIE -e "$regex" -- || true)
done

sarif_write demo-secrets reports/secrets.sarif
