#!/usr/bin/env bash
# Build stage, "sca": matches the programs the SBOM lists (what a target
# needs to deploy the configuration, from ci/tools.txt) against
# ci/advisories.txt. A program whose oldest supported version is below an
# advisory's fixed version is a finding with the advisory's score
# (reports/sca.sarif), judged by the pipeline's sca gate. Actions run in
# fresh clones, so without an SBOM at hand it runs ci/sbom.sh again: the
# SBOM is a function of the commit, so that is the same document.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

sbom=reports/sbom.cdx.json
if [[ ! -f $sbom && -f ${CONVEYOR_ARTIFACTS_DIR:-/nonexistent}/$sbom ]]; then
  sbom=$CONVEYOR_ARTIFACTS_DIR/$sbom
elif [[ ! -f $sbom ]]; then
  ci/sbom.sh
fi
echo "reading $sbom"

# "name version" of each program, from the components' purls.
programs=$(grep '"type": "application", "bom-ref": "pkg:' "$sbom" |
  sed -n 's|.*"purl": "pkg:generic/\([^@"]*\)@\([^"]*\)".*|\1 \2|p' || true)
[[ -n $programs ]] || { echo "$sbom lists no program: is it ci/sbom.sh's?" >&2; exit 1; }
echo "checking $(grep -c . <<<"$programs") program(s) against ci/advisories.txt"

while read -r name fixed score id; do
  [[ -z $name || $name == \#* ]] && continue
  version=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$programs")
  [[ -n $version && $version != "$fixed" ]] || continue
  # Affected when the oldest supported version sorts before the fix.
  [[ $(printf '%s\n%s\n' "$version" "$fixed" | sort -V | head -n1) == "$version" ]] || continue
  line=$(grep -nE "^$name[[:space:]]" ci/tools.txt | cut -d: -f1 | head -n1)
  echo "$name $version: $id (fixed in $fixed, score $score)"
  sarif_add "$id" error "$name $version, the oldest version the deploy path supports, is affected by $id (fixed in $fixed); raise it in ci/tools.txt" ci/tools.txt "${line:-1}" "$score"
done <ci/advisories.txt

sarif_write config-sca reports/sca.sarif
