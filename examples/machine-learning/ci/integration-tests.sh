#!/usr/bin/env bash
# beta, "integration-tests": the instance serves the model just deployed,
# and its predictions are the model's (JUnit reports/integration.xml).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
model="$STATE_DIR/instances/$NAME/model/current"
serves_this_version() {
  get /model | grep -q "^version $(cat "$model/VERSION")" || { echo "GET /model: $(get /model | head -n1)"; return 1; }
}
predicts_like_the_model() {
  local expected answer
  expected=$(awk '$1 == "intercept" { s += $2 } $1 == "weight" && $2 == "x1" { s += 2 * $3 } $1 == "weight" && $2 == "x2" { s += 3 * $3 } END { printf "%.3f", s }' "$model/model.txt")
  answer=$(get "/predict?x1=2&x2=3") || { echo "$answer"; return 1; }
  awk -v a="$answer" -v e="$expected" 'BEGIN { d = a - e; if (d < 0) d = -d; exit d > 0.002 }' ||
    { echo "predicted $answer, the model says $expected"; return 1; }
}
check "serves the deployed version" serves_this_version
check "predicts like the model" predicts_like_the_model
junit_write "integration $NAME" reports/integration.xml
