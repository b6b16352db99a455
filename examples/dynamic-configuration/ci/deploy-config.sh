#!/usr/bin/env bash
# beta/gamma/prod, "deploy-config": activates this environment's bundle of
# the package in $CONVEYOR_ARTIFACTS_DIR on the instance <environment>-<port>
# (on a rollback, CONVEYOR_ROLLBACK=1, the package is the last good version).
# The running service picks it up on its next request: nothing restarts.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance

package="${CONVEYOR_ARTIFACTS_DIR:?CONVEYOR_ARTIFACTS_DIR is not set}/dist/config.tar.gz"
[[ -f $package ]] || { echo "no package at $package" >&2; exit 1; }
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "$package" -C "$unpacked"
bundle="$unpacked/$ENVIRONMENT"
[[ -f $bundle/VERSION ]] || { echo "the package has no bundle for $ENVIRONMENT" >&2; exit 1; }
version=$(cat "$bundle/VERSION")
previous=$(active "$NAME")
activate "$NAME" "$version" "$bundle"
prune "$NAME" 5
echo "configuration ${CONVEYOR_ROLLBACK:+(rollback) }$version active on $NAME (was ${previous:-none})"
