#!/usr/bin/env bash
# test, "integration-tests": the launched environment passes the image's
# selftest and is the image this execution built (JUnit reports/integration.xml).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
root="$STATE_DIR/image-test/${CONVEYOR_EXECUTION_ID:-manual}/root"
selftest() { ROOT=$root sh "$root/usr/bin/selftest"; }
built_from_this_commit() {
  [[ $(cat "$root/etc/demo/image-commit") == "${CONVEYOR_COMMIT:0:12}" ]] || { echo "image-commit is $(cat "$root/etc/demo/image-commit")"; return 1; }
}
check "selftest passes" selftest
check "built from this commit" built_from_this_commit
junit_write integration reports/integration.xml
