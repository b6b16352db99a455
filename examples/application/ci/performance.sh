#!/usr/bin/env bash
# gamma, "performance-tests": 200 sequential GET / against this target's
# instance; prints requests per second, fails on an error or if it took more
# than 20 s.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

requests=200
start=$(date +%s%N)
for _ in $(seq "$requests"); do
  if ! failure=$(expect_get "$PORT" / 200); then
    echo "request failed: $failure" >&2
    exit 1
  fi
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
awk -v n="$requests" -v ms="$elapsed_ms" -v name="$NAME" \
  'BEGIN { printf "%d requests to %s in %.2f s: %.0f requests/s\n", n, name, ms / 1000, n * 1000 / (ms ? ms : 1) }'
if ((elapsed_ms > 20000)); then
  echo "too slow: more than 20 s for $requests requests" >&2
  exit 1
fi
