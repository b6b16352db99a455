#!/usr/bin/env bash
# beta/fleet, "provision" and "apply-baseline": applies the packaged baseline
# to this action's target, the directory
# $CONVEYOR_FLEET_ROOT/<account>/<region>/: in a rollout the target's account
# and region, otherwise the stage's environment as the account in region
# "local". Unpacks the package (or copies $CONVEYOR_BASELINE_DIR) into a temp
# dir and runs the bundle's `sh apply.sh` there, as the fleet's workers do.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

run_baseline apply.sh
