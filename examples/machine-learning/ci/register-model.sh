#!/usr/bin/env bash
# Build stage, "register": the model version, dist/model.tar.gz (the model,
# its metrics and parameters, and its version), stored and signed by digest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
train_model
awk -f model/evaluate.awk build/model.txt data/holdout.csv >build/metrics.json
cp model/params.env build/params.env
model_version >build/VERSION
mkdir -p dist
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C build -cf - VERSION model.txt metrics.json params.env |
  gzip -n >dist/model.tar.gz
echo "registered model $(model_version): dist/model.tar.gz sha256 $(sha256sum dist/model.tar.gz | cut -d' ' -f1)"
