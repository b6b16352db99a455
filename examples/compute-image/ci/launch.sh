#!/usr/bin/env bash
# test, "launch": an environment launched from the stored image: it is
# unpacked under $DEMO_STATE_DIR/image-test/<execution>/ for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
image="${CONVEYOR_ARTIFACTS_DIR:?}/dist/rootfs.tar.gz"
env_dir="$STATE_DIR/image-test/${CONVEYOR_EXECUTION_ID:-manual}"
rm -rf "$env_dir" && mkdir -p "$env_dir/root"
tar -xzf "$image" -C "$env_dir/root"
echo "launched an environment from sha256:$(sha256sum "$image" | cut -d' ' -f1) in $env_dir"
