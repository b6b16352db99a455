#!/usr/bin/env bash
# Build stage, "compile": builds demo-app with the short commit baked in as its
# version, into the cargo cache the build-stage actions share.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

APP_VERSION=$(app_version)
export APP_VERSION CARGO_TARGET_DIR="$CACHE_DIR/target"
cargo build --quiet --locked
echo "built demo-app $APP_VERSION: $CARGO_TARGET_DIR/debug/demo-app"
