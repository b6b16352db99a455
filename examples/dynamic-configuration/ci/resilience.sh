#!/usr/bin/env bash
# gamma, "resilience-tests": injects the fault a configuration pipeline
# exists to survive, a bad version reaching the store, into this target's
# instance: a version whose new-checkout flag is "yes" instead of a boolean
# (the schema refuses it; here it bypasses the build) becomes current. Under
# a stream of requests the service must keep serving the last good version,
# then the good version is made current again (also when this fails).
# Run it after the other gamma tests: it changes what is active meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
instance

good=$(active "$NAME")
[[ -n $good ]] || { echo "no configuration is active on $NAME" >&2; exit 1; }
store=$(store_dir "$NAME")
fault="fault-$good-$$"
bundle=$(mktemp -d)
restore() {
  activate "$NAME" "$good" "$store/versions/$good"
  rm -rf -- "$store/versions/$fault" "$bundle"
}
trap restore EXIT

printf '{\n  "new-checkout": "yes"\n}\n' >"$bundle/flags.json"
cp "$store/current/settings.json" "$bundle/settings.json"
printf '%s\n' "$fault" >"$bundle/VERSION"
activate "$NAME" "$fault" "$bundle"
echo "fault: version $fault (a flag that is not a boolean) is current on $NAME"

# 40 requests while the bad version is current, 10 of each kind.
serves_the_last_good_version() {
  local failure
  for _ in $(seq 10); do
    failure=$(expect_get /config 200 "version $good") || { echo "$failure"; return 1; }
    for path in / /checkout /health; do
      failure=$(expect_get "$path" 200) || { echo "$failure"; return 1; }
    done
  done
}
check "serves configuration $good while a bad version is current" serves_the_last_good_version
restore
trap - EXIT
[[ $(active "$NAME") == "$good" ]] || { echo "could not make $good current again" >&2; exit 1; }
echo "restored: version $good is current on $NAME"
check "serves configuration $good after the fault" expect_get /config 200 "version $good"
junit_write "resilience $NAME" "reports/resilience.xml"
