#!/usr/bin/env bash
# Build stage, "package": builds demo-app (same cargo cache, same version as
# ci/build.sh) and packs dist/app.tar.gz: the binary, release.conf and the
# targets/ directory if there is one. Later stages deploy this package and
# never build.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

APP_VERSION=$(app_version)
export APP_VERSION CARGO_TARGET_DIR="$CACHE_DIR/target"
cargo build --quiet --locked

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
files=(demo-app release.conf)
cp "$CARGO_TARGET_DIR/debug/demo-app" release.conf "$stage/"
if [[ -d targets ]]; then
  cp -R targets "$stage/"
  files+=(targets)
fi

# Reproducible-ish: fixed order, times and owners, no name or time in gzip.
mkdir -p dist
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "${files[@]}" |
  gzip -n >dist/app.tar.gz
echo "packaged demo-app $APP_VERSION: dist/app.tar.gz sha256 $(sha256sum dist/app.tar.gz | cut -d' ' -f1)"
