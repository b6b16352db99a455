#!/usr/bin/env bash
# gamma/prod, "synthetic-tests": a few requests a user would make.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance
for path in / /checkout / /checkout; do
  expect_get "$path" 200 || exit 1
done
echo "synthetic requests to $NAME answered 200"
