#!/usr/bin/env bash
# gamma, "dast": attacks this target's instance where configuration could
# leak or be changed. Writing to /config over HTTP (PUT, POST, PATCH, DELETE)
# must be refused (403, 404, 405 or 501): configuration changes only through
# this pipeline. Reaching the configuration store by path traversal must
# answer 400 or 404. What /config shows must hold no credential-like value
# (a key, or a setting named like a password, secret, token or API key).
# Writes a SARIF error per violation to reports/dast.sarif and fails if
# there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance

probe() { # RULE METHOD PATH ALLOWED-STATUSES...
  local rule=$1 method=$2 path=$3 response status
  shift 3
  if ! response=$(request "$method" "$path"); then
    finding "$rule" "$method $path dropped the connection" "$path"
    return
  fi
  status=${response%%$'\n'*}
  for allowed in "$@"; do
    [[ $status == "$allowed" ]] && { echo "ok    $rule: $method $path -> $status"; return; }
  done
  finding "$rule" "$method $path answered $status, expected $*" "$path"
}
finding() { # RULE MESSAGE PATH
  echo "FAIL  $1: $2"
  sarif_add "$1" error "$2" "http://127.0.0.1:$PORT$3" 1
}

for method in PUT POST PATCH DELETE; do
  probe config-write "$method" /config 403 404 405 501
done
for path in /../dynamic/current/settings.json /%2e%2e/%2e%2e/dynamic/current/flags.json \
  /config/../../dynamic/versions /config/%2e%2e/settings.json /config%00.json; do
  probe store-traversal GET "$path" 400 404
done

if ! response=$(request GET /config) || [[ ${response%%$'\n'*} != 200 ]]; then
  finding config-exposure "GET /config did not answer 200" /config
elif leaks=$(grep -E 'AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|^setting [^ ]*([Pp]assword|[Ss]ecret|[Tt]oken|[Aa]pi[-_]?[Kk]ey)' <<<"${response#*$'\n'}"); then
  finding config-exposure "GET /config shows credential-like values: $(head -n1 <<<"$leaks")" /config
else
  echo "ok    config-exposure: GET /config shows no credential-like value"
fi

sarif_write config-dast reports/dast.sarif
((${#SARIF_RESULTS[@]} == 0))
