#!/usr/bin/env bash
# Build stage, "sbom": writes a CycloneDX 1.5 JSON SBOM to reports/sbom.cdx.json:
# the app (name and version from Cargo.toml) as metadata.component and every
# crate Cargo.lock pulls from a registry as a component, one per line (the
# app is std-only, so there are none). ci/sca.sh reads it.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

name=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^name *=/ { print $2; exit }' Cargo.toml)
version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
app="pkg:cargo/$name@$version"

components=()
while IFS=$'\t' read -r crate crate_version; do
  components+=("    {\"type\": \"library\", \"bom-ref\": \"pkg:cargo/$crate@$crate_version\", \"name\": \"$crate\", \"version\": \"$crate_version\", \"purl\": \"pkg:cargo/$crate@$crate_version\"}")
done < <(awk -F'"' '
  function flush() { if (name != "" && source != "") print name "\t" version }
  /^\[\[package\]\]/ { flush(); name = version = source = "" }
  /^name = / { name = $2 }
  /^version = / { version = $2 }
  /^source = / { source = $2 }
  END { flush() }
' Cargo.lock)

mkdir -p reports
{
  cat <<JSON
{
  "bomFormat": "CycloneDX",
  "specVersion": "1.5",
  "version": 1,
  "metadata": {
    "timestamp": "$(git log -1 --format=%cI)",
    "tools": {"components": [{"type": "application", "name": "ci/sbom.sh"}]},
    "component": {"type": "application", "bom-ref": "$app", "name": "$name", "version": "$version", "purl": "$app"}
  },
  "components": [
JSON
  if [[ ${#components[@]} -gt 0 ]]; then printf '%s,\n' "${components[@]}" | sed '$ s/,$//'; fi
  cat <<JSON
  ],
  "dependencies": [{"ref": "$app", "dependsOn": []}]
}
JSON
} >reports/sbom.cdx.json
echo "wrote reports/sbom.cdx.json: $name $version, ${#components[@]} component(s)"
