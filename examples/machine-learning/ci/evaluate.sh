#!/usr/bin/env bash
# Build stage, "evaluate": scores the model on the held-out data into
# reports/metrics.json. The control plane compares these metrics with the
# deployed model's (spec.gates.modelQuality) and fails the run when the new
# model is worse beyond the threshold.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
train_model
mkdir -p reports
awk -f model/evaluate.awk build/model.txt data/holdout.csv >reports/metrics.json
echo "model $(model_version) on the holdout data: $(cat reports/metrics.json)"
