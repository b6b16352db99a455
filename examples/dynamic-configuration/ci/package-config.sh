#!/usr/bin/env bash
# Build stage, "package": one immutable configuration version, every
# environment's bundle in dist/config.tar.gz. Later stages deploy exactly
# these bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
[[ -d build ]] || ./ci/synth.sh >/dev/null
mkdir -p dist
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C build -cf - . | gzip -n >dist/config.tar.gz
echo "packaged configuration $(config_version): dist/config.tar.gz sha256 $(sha256sum dist/config.tar.gz | cut -d' ' -f1)"
