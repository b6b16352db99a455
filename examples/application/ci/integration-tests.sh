#!/usr/bin/env bash
# beta, "integration-tests": checks the deployed instance answers its API
# (/, /version is this commit, unknown paths are 404), written as JUnit XML to
# reports/integration.xml; a failed check fails the action.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

SUITE=integration
version=$(app_version)
check "GET / says hello" expect_get "$PORT" / 200 "hello from demo-app"
check "GET /version is $version" expect_get "$PORT" /version 200 "$version"
check "GET /no-such-page is 404" expect_get "$PORT" /no-such-page 404
check "GET /version?verbose=1 ignores the query" expect_get "$PORT" "/version?verbose=1" 200 "$version"
junit_write integration reports/integration.xml
((JUNIT_FAILURES == 0))
