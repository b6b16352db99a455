#!/usr/bin/env bash
# prod, "smoke" (synthetic test): predictions for a few known points are
# within 1.0 of the truth the data was drawn from (y = 3 x1 - 2 x2 + 5).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
for point in "1 1" "5 2" "9 9"; do
  read -r x1 x2 <<<"$point"
  answer=$(get "/predict?x1=$x1&x2=$x2") || { echo "$answer"; exit 1; }
  awk -v a="$answer" -v t="$((3 * x1 - 2 * x2 + 5))" 'BEGIN { d = a - t; if (d < 0) d = -d; exit d > 1.0 }' ||
    { echo "predict($x1, $x2) = $answer, truth $((3 * x1 - 2 * x2 + 5))"; exit 1; }
  echo "predict($x1, $x2) = $answer"
done
