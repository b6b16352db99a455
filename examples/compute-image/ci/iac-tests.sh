#!/usr/bin/env bash
# Build stage, "iac-tests": the image definition is well formed: the
# policy rules parse, the package list and the advisories feed are
# "name version" lines, the selftest is executable (JUnit reports/iac.xml).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

rules_parse() {
  grep -vE '^(#|$)' policy/rules.txt |
    awk 'NF != 4 || $2 !~ /^[0-9]+(\.[0-9]+)?$/ || $2 > 10 { print "bad rule: " $0; bad = 1 } END { exit bad }'
}
packages_are_name_version() {
  grep -vE '^(#|$)' rootfs/var/lib/demo/packages | awk 'NF != 2 { print "bad line: " $0; bad = 1 } END { exit bad }'
}
advisories_parse() {
  grep -vE '^(#|$)' policy/advisories.txt | awk 'NF != 4 { print "bad advisory: " $0; bad = 1 } END { exit bad }'
}
selftest_is_executable() { [[ -x rootfs/usr/bin/selftest ]] || { echo "rootfs/usr/bin/selftest is not executable"; return 1; }; }
builds_reproducibly() {
  local first
  build_image && first=$IMAGE_DIGEST && build_image
  [[ $first == "$IMAGE_DIGEST" ]] || { echo "two builds differ: $first, $IMAGE_DIGEST"; return 1; }
}

check "policy rules parse" rules_parse
check "packages are name and version" packages_are_name_version
check "advisories parse" advisories_parse
check "the selftest is executable" selftest_is_executable
check "the image builds reproducibly" builds_reproducibly
junit_write iac reports/iac.xml
