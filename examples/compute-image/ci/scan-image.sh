#!/usr/bin/env bash
# Build stage, "vulnerabilities": every package the image ships against the
# advisories feed; a package at or below an advisory's version is a finding
# with the advisory's CVSS score (reports/vulns.sarif), judged by the
# pipeline's vulnerabilityScan gate.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
build_image
packages=build/rootfs/var/lib/demo/packages
while read -r id package affected score; do
  installed=$(awk -v p="$package" '$1 == p { print $2 }' "$packages")
  [[ -n $installed ]] || continue
  # Affected when the installed version sorts at or before the advisory's.
  if [[ $(printf '%s\n%s\n' "$installed" "$affected" | sort -V | head -n1) == "$installed" ]]; then
    sarif_add "$id" "$score" "$package $installed is affected by $id (fixed after $affected)" var/lib/demo/packages
  fi
done < <(grep -vE '^(#|$)' policy/advisories.txt)
echo "scanned image $IMAGE_DIGEST: $(grep -cvE '^(#|$)' "$packages") packages, $(grep -cvE '^(#|$)' policy/advisories.txt) advisories"
sarif_write image-vulnerabilities reports/vulns.sarif
