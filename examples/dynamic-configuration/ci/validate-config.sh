#!/usr/bin/env bash
# Build stage, "schema": lists what the worker checks against the schemas
# once this exits 0 (the action's `validate` in pipeline.yaml): the flags and
# every environment's settings. An invalid document fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in config/flags.json config/settings/*.json; do
  echo "to check: $f"
done
