#!/usr/bin/env bash
# alpha, "secrets": scans the repository's files (tracked and untracked, not
# ignored; every file but .git/, dist/ and reports/ outside a git checkout)
# for things that look like credentials: AWS access key ids and secret keys,
# private key blocks, GitHub and Slack tokens. Each hit is a SARIF error in
# reports/secrets.sarif; the pipeline fails the run on any. The secret itself
# is never printed, only where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

# Each pattern is split in two quoted halves, so this file never matches itself.
patterns=(
  "aws-access-key-id|AWS access key id|(AK""IA|AS""IA)[0-9A-Z]{16}"
  "aws-secret-access-key|AWS secret access key|(aws_secret_access""_key|AWS_SECRET_ACCESS""_KEY|SecretAccess""Key)[\"']?[[:space:]]*[:=][[:space:]]*[\"']?[A-Za-z0-9/+=]{40}"
  "private-key|private key block|-----BEGIN ""[A-Z ]*PRIVATE KEY-----"
  "github-token|GitHub token|gh[pousr]""_[A-Za-z0-9]{36}"
  "slack-token|Slack token|xo""x[bpoas]-[0-9A-Za-z-]{10,}"
)

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -d '' files < <(git ls-files -z --cached --others --exclude-standard)
else
  mapfile -d '' files < <(find . \( -path ./.git -o -path ./dist -o -path ./reports \) -prune -o -type f -printf '%P\0' | sort -z)
fi
echo "scanning ${#files[@]} file(s)"

for entry in "${patterns[@]}"; do
  IFS='|' read -r rule what regex <<<"$entry"
  while IFS=: read -r file line _; do
    echo "possible $what in $file:$line"
    sarif_add "$rule" error "possible $what (value not shown)" "$file" "$line"
  done < <(if [[ ${#files[@]} -gt 0 ]]; then printf '%s\0' "${files[@]}" | xargs -0 -r grep -nHIE -e "$regex" -- 2>/dev/null; fi || true)
done

sarif_write baseline-secrets reports/secrets.sarif
