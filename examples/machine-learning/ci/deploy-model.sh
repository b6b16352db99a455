#!/usr/bin/env bash
# beta/prod, "deploy": activates the model in $CONVEYOR_ARTIFACTS_DIR on the
# serving instance <environment>-<port> (a rollback run gets the last good
# model): stored once under $DEMO_STATE_DIR/instances/<name>/model/versions/,
# then current pointed at it with one rename. demo-app serves it from its
# next request on, without a restart.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
package="${CONVEYOR_ARTIFACTS_DIR:?}/dist/model.tar.gz"
store="$STATE_DIR/instances/$NAME/model"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "$package" -C "$unpacked"
version=$(cat "$unpacked/VERSION")
mkdir -p "$store/versions"
if [[ ! -d $store/versions/$version ]]; then
  cp -R "$unpacked" "$store/versions/.incoming-$$" && mv -T "$store/versions/.incoming-$$" "$store/versions/$version"
fi
ln -sfn "versions/$version" "$store/current.next-$$" && mv -T "$store/current.next-$$" "$store/current"
echo "model ${CONVEYOR_ROLLBACK:+(rollback) }$version serving on $NAME: $(cat "$unpacked/metrics.json")"
