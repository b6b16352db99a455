#!/usr/bin/env bash
# alpha, "package": packs baseline/ into dist/baseline.tar.gz, reproducibly
# (sorted names, fixed mtime, owner and modes, gzip without name or time), so
# the same baseline always gives the same bytes and the same digest. Later
# stages apply exactly this package.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

export LC_ALL=C
[[ -f baseline/apply.sh && -f baseline/check.sh ]] || { echo "baseline/ needs apply.sh and check.sh" >&2; exit 1; }
mkdir -p dist
tmp=$(mktemp dist/.baseline.tar.gz.XXXXXX)
trap 'rm -f "$tmp"' EXIT
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' --format=gnu \
  -C baseline -cf - . | gzip -n >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$PACKAGE"
echo "packaged baseline ($(tar -tzf "$PACKAGE" | grep -vc '/$') file(s)): $PACKAGE sha256 $(sha256sum "$PACKAGE" | cut -d' ' -f1)"
