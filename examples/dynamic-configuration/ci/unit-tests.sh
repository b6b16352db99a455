#!/usr/bin/env bash
# Build stage, "unit-tests": the bundles synth made, and the store's IaC
# (infra/store.sh) on a scratch directory. JUnit in reports/unit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
[[ -d build ]] || ./ci/synth.sh >/dev/null

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

each_environment_has_a_bundle() {
  for settings in config/settings/*.json; do
    local environment
    environment=$(basename "$settings" .json)
    for f in VERSION flags.json settings.json; do
      [[ -s build/$environment/$f ]] || { echo "build/$environment/$f is missing"; return 1; }
    done
  done
}
every_environment_has_the_same_flags() {
  local first=""
  for f in build/*/flags.json; do
    if [[ -z $first ]]; then first=$f; continue; fi
    cmp -s "$first" "$f" || { echo "$f differs from $first"; return 1; }
  done
}
activating_is_atomic_and_idempotent() (
  STATE_DIR=$scratch
  activate beta-1 v1 "$(bundle v1)" && activate beta-1 v1 "$(bundle v1)"
  [[ $(active beta-1) == v1 ]] || { echo "v1 not active"; return 1; }
  [[ -L $(store_dir beta-1)/current ]] || { echo "current is not a link"; return 1; }
)
an_older_version_can_be_activated_again() (
  STATE_DIR=$scratch
  activate beta-2 v1 "$(bundle v1)" && activate beta-2 v2 "$(bundle v2)" && activate beta-2 v1 "$(bundle v1)"
  [[ $(active beta-2) == v1 ]] || { echo "rolled back to $(active beta-2), not v1"; return 1; }
)
pruning_keeps_the_active_version() (
  STATE_DIR=$scratch
  for v in v1 v2 v3; do activate beta-3 "$v" "$(bundle "$v")"; sleep 0.01; done
  activate beta-3 v1 "$(bundle v1)"
  prune beta-3 1
  [[ -d $(store_dir beta-3)/versions/v1 ]] || { echo "pruned the active version"; return 1; }
)
bundle() {
  local dir="$scratch/bundles/$1"
  mkdir -p "$dir" && echo '{}' >"$dir/flags.json" && echo '{}' >"$dir/settings.json" && echo "$1" >"$dir/VERSION"
  printf '%s\n' "$dir"
}

check "each environment has a bundle" each_environment_has_a_bundle
check "every environment has the same flags" every_environment_has_the_same_flags
check "activating is atomic and idempotent" activating_is_atomic_and_idempotent
check "an older version can be activated again" an_older_version_can_be_activated_again
check "pruning keeps the active version" pruning_keeps_the_active_version
junit_write unit reports/unit.xml
