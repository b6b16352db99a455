#!/usr/bin/env bash
# Build stage, "synth": assembles one bundle per environment under build/:
# build/<environment>/{VERSION,flags.json,settings.json}. The flags are the
# same for every environment (one flag version, promoted like a release);
# the settings are the environment's own.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

version=$(config_version)
rm -rf build
for settings in config/settings/*.json; do
  environment=$(basename "$settings" .json)
  mkdir -p "build/$environment"
  cp config/flags.json "build/$environment/flags.json"
  cp "$settings" "build/$environment/settings.json"
  printf '%s\n' "$version" >"build/$environment/VERSION"
  echo "bundle $environment: version $version"
done
