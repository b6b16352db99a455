#!/usr/bin/env bash
# alpha, "package": packs the baseline into dist/baseline.tar.gz, reproducibly
# (sorted names, fixed mtime, owner and modes, gzip without name or time), so
# the same baseline always gives the same bytes and the same digest. Later
# stages apply exactly this package.
#
# In a fleet rollout (CONVEYOR_PARAM_BASELINE_VERSION set by the fleet
# service) the baseline is that stored version, fetched with the conveyor CLI
# (${CONVEYOR_CLI:-conveyor}, at ${CONVEYOR_FLEET_ENDPOINT:-$CONVEYOR_ENDPOINT}),
# with its apply and check commands in .conveyor-apply and .conveyor-check.
# Otherwise it is this repository's baseline/.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

export LC_ALL=C
source_dir=baseline
fetched=""
tmp=""
trap 'rm -rf ${fetched:+"$fetched"} ${tmp:+"$tmp"}' EXIT
if [[ -n ${CONVEYOR_PARAM_BASELINE_VERSION:-} ]]; then
  fetched=$(mktemp -d)
  source_dir=$fetched
  endpoint=${CONVEYOR_FLEET_ENDPOINT:-${CONVEYOR_ENDPOINT:-}}
  "${CONVEYOR_CLI:-conveyor}" ${endpoint:+--endpoint "$endpoint"} -o json \
    fleet baseline get "$CONVEYOR_PARAM_BASELINE_VERSION" --extract "$source_dir" >"$source_dir/.version.json"
  python3 - "$source_dir" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
v = json.loads((d / ".version.json").read_text())
(d / ".conveyor-apply").write_text(v["applyCommand"] + "\n")
(d / ".conveyor-check").write_text(v["checkCommand"] + "\n")
(d / ".version.json").unlink()
PY
  echo "baseline: $CONVEYOR_PARAM_BASELINE_VERSION from the fleet service (${CONVEYOR_PARAM_BASELINE_DIGEST:-no digest given})"
else
  [[ -f baseline/apply.sh && -f baseline/check.sh ]] || { echo "baseline/ needs apply.sh and check.sh" >&2; exit 1; }
fi
mkdir -p dist
tmp=$(mktemp dist/.baseline.tar.gz.XXXXXX)
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' --format=gnu \
  -C "$source_dir" -cf - . | gzip -n >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$PACKAGE"
echo "packaged baseline ($(tar -tzf "$PACKAGE" | grep -vc '/$') file(s)): $PACKAGE sha256 $(sha256sum "$PACKAGE" | cut -d' ' -f1)"
