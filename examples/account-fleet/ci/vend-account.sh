#!/usr/bin/env bash
# account-vending, "create-account": provisions CONVEYOR_PARAM_ACCOUNT, here a
# directory per region under $CONVEYOR_FLEET_ROOT, and applies the OU's
# desired baseline version (when it has one), packaged by
# ci/package-baseline.sh from the fleet service, to each region.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

account=${CONVEYOR_PARAM_ACCOUNT:?CONVEYOR_PARAM_ACCOUNT is not set: the fleet service starts this pipeline}
regions=${CONVEYOR_PARAM_ACCOUNT_REGIONS:?CONVEYOR_PARAM_ACCOUNT_REGIONS is not set}
root=${CONVEYOR_FLEET_ROOT:-${TMPDIR:-/tmp}/conveyor-fleet}
IFS=, read -r -a list <<<"$regions"
if [[ -n ${CONVEYOR_PARAM_BASELINE_VERSION:-} ]]; then
  ./ci/package-baseline.sh
fi
for region in "${list[@]}"; do
  mkdir -p "$root/$account/$region"
  echo "provisioned $account/$region (${CONVEYOR_PARAM_ACCOUNT_TIER:-?} tier, OU ${CONVEYOR_PARAM_ACCOUNT_OU:-?})"
  if [[ -n ${CONVEYOR_PARAM_BASELINE_VERSION:-} ]]; then
    CONVEYOR_TARGET_ACCOUNT=$account CONVEYOR_TARGET_REGION=$region run_baseline apply.sh
  fi
done
