#!/usr/bin/env bash
# gamma, "dast": sends hostile requests to this target's instance (path
# traversal, a NUL byte, header injection, very long paths) and expects each
# to be refused with 400 or 404, never a 5xx or a dropped connection. Writes a
# SARIF error per violation to reports/dast.sarif and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

long=$(printf 'a%.0s' $(seq 5000))
huge=$(printf 'a%.0s' $(seq 20000))
probes=(
  "path-traversal|/../../etc/passwd"
  "path-traversal|/%2e%2e/%2e%2e/etc/passwd"
  "null-byte|/version%00.txt"
  "header-injection|/%0d%0aSet-Cookie:%20pwned=1"
  "long-path|/$long"
  "oversized-request|/$huge"
)
for probe in "${probes[@]}"; do
  rule=${probe%%|*} path=${probe#*|}
  shown=${path:0:60}
  if ((${#path} > 60)); then shown+="... (${#path} characters)"; fi
  if ! response=$(http_get "$PORT" "$path"); then
    problem="dropped the connection"
  else
    status=${response%%$'\n'*}
    case $status in
      400 | 404) echo "ok    $rule: GET $shown -> $status"; continue ;;
      *) problem="answered $status, expected 400 or 404" ;;
    esac
  fi
  echo "FAIL  $rule: GET $shown $problem"
  sarif_add "$rule" error "GET $shown $problem" "http://127.0.0.1:$PORT${path:0:200}"
done

sarif_write demo-dast reports/dast.sarif
((${#SARIF_RESULTS[@]} == 0))
