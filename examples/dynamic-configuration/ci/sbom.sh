#!/usr/bin/env bash
# Build stage, "sbom": a CycloneDX 1.5 JSON SBOM of the configuration version
# in reports/sbom.cdx.json: the version as metadata.component, each document
# the package carries (config/flags.json, config/settings/*.json) as a file
# component with its SHA-256, and the programs ci/tools.txt says a target
# needs to deploy it, one component a line. ci/sca.sh reads it. It is a
# function of the commit, so it can be written again anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

version=$(config_version)
root="configuration@$version"
components=()
programs=()
for f in config/flags.json config/settings/*.json; do
  [[ -f $f ]] || { echo "$f is missing" >&2; exit 1; }
  hash=$(sha256sum "$f" | cut -d' ' -f1)
  components+=("    {\"type\": \"file\", \"bom-ref\": \"file:$f\", \"name\": \"$f\", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"$hash\"}]}")
done
while read -r name oldest _; do
  [[ $name =~ ^[a-z0-9][a-z0-9.+-]*$ && $oldest =~ ^[0-9][0-9A-Za-z.+-]*$ ]] ||
    { echo "ci/tools.txt: bad line '$name $oldest'" >&2; exit 1; }
  purl="pkg:generic/$name@$oldest"
  components+=("    {\"type\": \"application\", \"bom-ref\": \"$purl\", \"name\": \"$name\", \"version\": \"$oldest\", \"purl\": \"$purl\", \"scope\": \"required\", \"description\": \"oldest version the deploy path supports\"}")
  programs+=("\"$purl\"")
done < <(grep -vE '^[[:space:]]*(#|$)' ci/tools.txt)
[[ ${#programs[@]} -gt 0 ]] || { echo "ci/tools.txt lists no program" >&2; exit 1; }

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
    "component": {"type": "data", "bom-ref": "$root", "name": "configuration", "version": "$version"}
  },
  "components": [
JSON
  printf '%s,\n' "${components[@]}" | sed '$ s/,$//'
  cat <<JSON
  ],
  "dependencies": [{"ref": "$root", "dependsOn": [$(IFS=,; printf '%s' "${programs[*]}")]}]
}
JSON
} >reports/sbom.cdx.json
echo "wrote reports/sbom.cdx.json: configuration $version, $((${#components[@]} - ${#programs[@]})) document(s), ${#programs[@]} program(s)"
