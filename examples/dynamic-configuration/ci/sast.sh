#!/usr/bin/env bash
# Build stage, "sast": the shell that deploys configuration (infra/, ci/)
# must not eval input or fetch code; each finding is high (reports/sast.sarif).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
while IFS=: read -r file line _; do
  sarif_add unsafe-shell error "eval, or piping a download into a shell" "$file" "$line"
done < <(grep -nE '(^|[^[:alnum:]_])eval[[:space:]]|curl[^|]*\|[[:space:]]*(ba)?sh' infra/*.sh ci/*.sh | grep -v '^ci/sast.sh:' || true)
sarif_write config-sast reports/sast.sarif
