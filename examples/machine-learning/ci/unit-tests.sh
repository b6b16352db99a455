#!/usr/bin/env bash
# Build stage, "unit-tests": the training and scoring code on data with a
# known answer (JUnit reports/unit.xml).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# y = 2 x1 - x2 + 1, exactly.
awk 'BEGIN { print "x1,x2,y"; for (i = 0; i < 20; i++) { a = i % 7; b = (i * 3) % 5; print a "," b "," 2 * a - b + 1 } }' >"$scratch/exact.csv"

recovers_known_weights() {
  awk -v features=x1,x2 -f model/train.awk "$scratch/exact.csv" >"$scratch/model.txt"
  awk '$1 == "intercept" && ($2 < 0.999 || $2 > 1.001) { exit 1 }
       $1 == "weight" && $2 == "x1" && ($3 < 1.999 || $3 > 2.001) { exit 1 }
       $1 == "weight" && $2 == "x2" && ($3 < -1.001 || $3 > -0.999) { exit 1 }' "$scratch/model.txt" ||
    { cat "$scratch/model.txt"; return 1; }
}
scores_a_perfect_fit_as_one() {
  awk -f model/evaluate.awk "$scratch/model.txt" "$scratch/exact.csv" | grep -q '"r2": 1.0000'
}
refuses_an_unknown_feature() {
  ! awk -v features=x3 -f model/train.awk "$scratch/exact.csv" >/dev/null 2>&1
}
check "recovers known weights" recovers_known_weights
check "scores a perfect fit as 1" scores_a_perfect_fit_as_one
check "refuses an unknown feature" refuses_an_unknown_feature
junit_write unit reports/unit.xml
