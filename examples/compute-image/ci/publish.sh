#!/usr/bin/env bash
# publish, "publish": the image into the registry by digest
# ($DEMO_STATE_DIR/registry/demo-base/sha256-<hex>.tar.gz), and "latest"
# pointed at it. The execution's success publishes it to downstream
# pipelines, which start pinned to this digest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
image="${CONVEYOR_ARTIFACTS_DIR:?}/dist/rootfs.tar.gz"
digest=$(sha256sum "$image" | cut -d' ' -f1)
registry="$STATE_DIR/registry/demo-base"
mkdir -p "$registry"
cp "$image" "$registry/sha256-$digest.tar.gz.tmp" && mv "$registry/sha256-$digest.tar.gz.tmp" "$registry/sha256-$digest.tar.gz"
printf 'sha256:%s\n' "$digest" >"$registry/latest.tmp" && mv "$registry/latest.tmp" "$registry/latest"
echo "published demo-base@sha256:$digest${CONVEYOR_ROLLBACK:+ (rollback)}"
