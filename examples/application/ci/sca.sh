#!/usr/bin/env bash
# Build stage, "sca": matches the components of the SBOM ci/sbom.sh writes
# (one component a line) against ci/advisories.txt and writes a SARIF result
# per vulnerable component to reports/sca.sarif. The pipeline's gate judges
# them by severity. Actions run in fresh clones and artifacts only reach
# later stages, so unless an SBOM is at hand it runs ci/sbom.sh again: the
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

# The crates the SBOM lists: "name version" lines, from the components' purls.
crates=$(grep '"type": "library"' "$sbom" |
  sed -n 's|.*"purl": "pkg:cargo/\([^@"]*\)@\([^"]*\)".*|\1 \2|p' || true)
echo "checking $(grep -c . <<<"$crates" || true) component(s) against ci/advisories.txt"

while read -r name version severity id; do
  [[ -z $name || $name == \#* ]] && continue
  grep -qxF "$name $version" <<<"$crates" || continue
  case $severity in
    critical) level=error score=9.5 ;;
    high) level=error score=8.0 ;;
    medium) level=warning score=5.5 ;;
    *) level=note score=2.0 ;;
  esac
  echo "$name $version: $id ($severity)"
  sarif_add "$id" "$level" "$name $version is affected by $id ($severity)" Cargo.lock "" "$score"
done <ci/advisories.txt

sarif_write demo-sca reports/sca.sarif
