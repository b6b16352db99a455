#!/usr/bin/env bash
# Build stage, "package": builds demo-app (same cargo cache, same version as
# ci/build.sh) and packs dist/app.tar.gz: the binary, release.conf, the
# targets/ directory if there is one, and the base image's os-release and
# digest when built on one. Later stages deploy this package and never build.
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
# Built on a base image? A pipeline that lists an image pipeline in
# spec.upstream gets the pinned image under upstream/<pipeline>/; the
# package records which one (demo-app answers GET /base with it).
base=$(find "${CONVEYOR_ARTIFACTS_DIR:-/nonexistent}/upstream" -name rootfs.tar.gz 2>/dev/null | head -n1 || true)
if [[ -n $base ]]; then
  tar -xzf "$base" -O ./etc/os-release >"$stage/base-os-release"
  echo "sha256:$(sha256sum "$base" | cut -d' ' -f1)" >"$stage/base-digest"
  files+=(base-os-release base-digest)
  echo "built on $(sed -n 's/^PRETTY_NAME=//p' "$stage/base-os-release") $(cat "$stage/base-digest")"
fi

# Reproducible-ish: fixed order, times and owners, no name or time in gzip.
mkdir -p dist
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "${files[@]}" |
  gzip -n >dist/app.tar.gz
echo "packaged demo-app $APP_VERSION: dist/app.tar.gz sha256 $(sha256sum dist/app.tar.gz | cut -d' ' -f1)"
