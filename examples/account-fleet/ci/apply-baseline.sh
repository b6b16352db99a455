#!/usr/bin/env bash
# beta/fleet, "provision" and "apply-baseline": applies the packaged baseline
# to this action's target, the directory
# $CONVEYOR_FLEET_ROOT/<account>/<region>/: in a rollout the target's account
# and region, otherwise the stage's environment as the account in region
# "local". Unpacks the package (or copies $CONVEYOR_BASELINE_DIR) into a temp
# dir and runs there the version's apply command from .conveyor-apply with
# `sh -c` when the package came from the fleet service (a rollout or vending
# execution), else the bundle's `sh apply.sh` (see run_baseline in common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

run_baseline apply.sh
