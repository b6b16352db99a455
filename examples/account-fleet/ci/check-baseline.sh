#!/usr/bin/env bash
# beta, "integration-tests": checks this action's target against the packaged
# baseline by running, in the bundle unpacked as in ci/apply-baseline.sh, the
# version's check command from .conveyor-check with `sh -c` when the package
# came from the fleet service, else `sh check.sh`: fails, listing the missing,
# changed and unexpected files, when the target has drifted from what
# apply.sh put there.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

run_baseline check.sh
