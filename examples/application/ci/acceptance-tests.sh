#!/usr/bin/env bash
# beta, "acceptance-tests": checks what a user of the deployed instance sees
# (the greeting names this instance and version, only GET is accepted, unknown
# paths are 404), written as JUnit XML to reports/acceptance.xml; a failed
# check fails the action.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

# expect_post PORT PATH STATUS: a POST answers STATUS.
expect_post() {
  local request response
  printf -v request 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n' "$2"
  response=$(http_request "$1" "$request") || { echo "POST $2: no answer"; return 1; }
  [[ ${response%%$'\n'*} == "$3" ]] || { echo "POST $2: status ${response%%$'\n'*}, expected $3"; return 1; }
}

SUITE=acceptance
version=$(app_version)
check "the greeting names this instance" expect_get "$PORT" / 200 "on $NAME"
check "the greeting names version $version" expect_get "$PORT" / 200 "demo-app $version "
check "POST / is refused" expect_post "$PORT" / 405
check "GET /admin is 404" expect_get "$PORT" /admin 404
junit_write acceptance reports/acceptance.xml
((JUNIT_FAILURES == 0))
