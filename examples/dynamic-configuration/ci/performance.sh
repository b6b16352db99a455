#!/usr/bin/env bash
# gamma, "performance-tests": 150 sequential requests to this target's
# instance over the pages the configuration drives (/, /checkout, /config).
# The service checks for a new version on every request, so this is the
# price of dynamic configuration: every answer must be 200, /config must keep
# showing the version just activated, and the lot must take at most 20 s.
# Prints requests per second.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
version=$(active "$NAME")
[[ -n $version ]] || { echo "no configuration is active on $NAME" >&2; exit 1; }

requests=150
paths=(/ /checkout /config)
start=$(date +%s%N)
for i in $(seq "$requests"); do
  path=${paths[i % ${#paths[@]}]}
  text=""
  [[ $path == /config ]] && text="version $version"
  if ! failure=$(expect_get "$path" 200 "$text"); then
    echo "request $i failed: $failure" >&2
    exit 1
  fi
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
awk -v n="$requests" -v ms="$elapsed_ms" -v name="$NAME" -v v="$version" \
  'BEGIN { printf "%d requests to %s (configuration %s) in %.2f s: %.0f requests/s\n", n, name, v, ms / 1000, n * 1000 / (ms ? ms : 1) }'
if ((elapsed_ms > 20000)); then
  echo "too slow: more than 20 s for $requests requests" >&2
  exit 1
fi
