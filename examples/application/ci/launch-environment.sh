#!/usr/bin/env bash
# beta/gamma, "launch": makes sure the environment exists. In the demo an
# environment is a directory under $DEMO_STATE_DIR that holds its database.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

environment=${CONVEYOR_ENVIRONMENT:?CONVEYOR_ENVIRONMENT is not set}
dir="$STATE_DIR/$environment"
if [[ -d $dir ]]; then
  echo "environment $environment already exists: $dir"
else
  mkdir -p "$dir"
  echo "launched environment $environment: created $dir"
fi
