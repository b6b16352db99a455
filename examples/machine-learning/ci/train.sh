#!/usr/bin/env bash
# Build stage, "train": fits the model model/params.env describes.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
train_model
echo "trained model $(model_version):"
cat build/model.txt
