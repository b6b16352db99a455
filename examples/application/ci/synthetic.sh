#!/usr/bin/env bash
# gamma/prod, "synthetic-tests": a few requests a user would make, against the
# instance just deployed to this target; fails on any non-200 answer.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

for i in 1 2 3 4 5; do
  expect_get "$PORT" / 200 "hello" || exit 1
  echo "request $i to $NAME: 200"
done
expect_get "$PORT" /version 200 || exit 1
echo "synthetic checks of $NAME passed"
