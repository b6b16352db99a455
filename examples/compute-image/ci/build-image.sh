#!/usr/bin/env bash
# Build stage, "build-image": assembles the root filesystem and packs it;
# the scans and the package action rebuild the same bytes (see build_image).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
build_image
echo "built dist/rootfs.tar.gz $IMAGE_DIGEST ($(find build/rootfs -type f | wc -l) files)"
