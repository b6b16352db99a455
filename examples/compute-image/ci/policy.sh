#!/usr/bin/env bash
# Build stage, "policy": policy as code on the built image, each broken rule
# a SARIF result with the rule's severity (reports/policy.sarif); the
# pipeline's policyAsCode gate judges them.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
build_image
root=build/rootfs
while read -r id severity rule argument; do
  case $rule in
    world-writable)
      while IFS= read -r f; do sarif_add "$id" "$severity" "writable by others" "${f#"$root"/}"; done < <(find "$root" -perm -o+w ! -type l)
      ;;
    setuid)
      while IFS= read -r f; do sarif_add "$id" "$severity" "setuid or setgid" "${f#"$root"/}"; done < <(find "$root" -type f \( -perm -4000 -o -perm -2000 \))
      ;;
    forbid-line)
      file=${argument%%:*} pattern=${argument#*:}
      if [[ -f $root/$file ]] && grep -qE "$pattern" "$root/$file"; then
        sarif_add "$id" "$severity" "a line matches $pattern" "$file"
      fi
      ;;
    *) echo "unknown policy check $rule" >&2; exit 2 ;;
  esac
done < <(grep -vE '^(#|$)' policy/rules.txt)
echo "checked image $IMAGE_DIGEST against $(grep -cvE '^(#|$)' policy/rules.txt) rules"
sarif_write image-policy reports/policy.sarif
