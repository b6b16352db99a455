#!/usr/bin/env bash
# "acceptance-tests": what a user sees with this configuration: the greeting
# it sets, and a healthy service.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
greeting=$(sed -nE 's/.*"greeting"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/p' "$(store_dir "$NAME")/current/settings.json")
check "greets with '$greeting'" expect_get / 200 "$greeting from demo-app"
check "is healthy" expect_get /health 200
junit_write "acceptance $NAME" "reports/acceptance.xml"
