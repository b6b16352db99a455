#!/usr/bin/env bash
# beta/gamma, "integration-tests": the running service serves the version
# just activated, and its checkout follows the new-checkout flag.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
version=$(active "$NAME")
flow="classic flow"
grep -qE '"new-checkout"[[:space:]]*:[[:space:]]*true' "$(store_dir "$NAME")/current/flags.json" && flow="new flow"
check "serves configuration $version" expect_get /config 200 "version $version"
check "checkout takes the $flow" expect_get /checkout 200 "$flow"
junit_write "integration $NAME" "reports/integration.xml"
