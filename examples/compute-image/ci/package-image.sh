#!/usr/bin/env bash
# Build stage, "package": the image itself, dist/rootfs.tar.gz, stored and
# signed by the control plane; later stages use exactly these bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
build_image
echo "packaged image $IMAGE_DIGEST"
