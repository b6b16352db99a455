#!/bin/sh
# Checks one target, $CONVEYOR_FLEET_ROOT/$CONVEYOR_ACCOUNT/$CONVEYOR_REGION/
# (the root defaults to ${TMPDIR:-/tmp}/conveyor-fleet), against this
# baseline: <target>/baseline/ must hold exactly the bundle's managed files
# (all but apply.sh, check.sh and README.md) with the bundle's content, and
# apply.sh must have finished there (<target>/.conveyor-baseline). Prints what
# is missing, changed or unexpected. POSIX sh, run as `sh check.sh` from
# inside the unpacked bundle.
# Exit status: 0 in line with the baseline, 1 drift, 2 bad environment.
set -eu
cd "$(dirname "$0")"

nl='
'
die() {
  echo "check.sh: $2" >&2
  exit "$1"
}

# --- The target, from the environment --------------------------------------
# check_id NAME WHAT EXAMPLE: $NAME is set and only lowercase letters, digits, '-'.
check_id() {
  eval "value=\${$1:-}"
  case $value in
    '') die 2 "$1 is not set: the $2 to check, e.g. $1=$3" ;;
    *[!a-z0-9-]*) die 2 "$1='$value' is not a valid $2: use lowercase letters, digits and '-' (e.g. $3)" ;;
  esac
}
check_id CONVEYOR_ACCOUNT "account id" prod-eu-1
check_id CONVEYOR_REGION region eu-west-1
account=$CONVEYOR_ACCOUNT
region=$CONVEYOR_REGION
root=${CONVEYOR_FLEET_ROOT:-${TMPDIR:-/tmp}/conveyor-fleet}
case $root in
  /*) ;;
  *) die 2 "CONVEYOR_FLEET_ROOT must be an absolute path (got '$root')" ;;
esac
target=$root/$account/$region
dest=$target/baseline

# in_list ITEM LIST: ITEM is one of the lines of LIST.
in_list() {
  case "$nl$2" in
    *"$nl$1$nl"*) return 0 ;;
  esac
  return 1
}
# sha256_of FILE: its SHA-256, hex.
sha256_of() {
  sum=$(sha256sum <"$1")
  echo "${sum%% *}"
}

# --- Compare ---------------------------------------------------------------
findings=''
missing=0
changed=0
unexpected=0
files=0
managed=''
while IFS= read -r f; do
  case $f in
    # Not managed: the bundle's own scripts, and the commands a package
    # step adds (.conveyor-apply, .conveyor-check).
    '' | apply.sh | check.sh | README.md | .conveyor-*) continue ;;
  esac
  managed=$managed$f$nl
  files=$((files + 1))
  to=$dest/$f
  if [ -L "$to" ] || { [ -e "$to" ] && [ ! -f "$to" ]; }; then
    changed=$((changed + 1))
    findings="${findings}  changed     $f (not a regular file)$nl"
  elif [ ! -e "$to" ]; then
    missing=$((missing + 1))
    findings="${findings}  missing     $f$nl"
  elif [ "$(sha256_of "$to")" != "$(sha256_of "$f")" ]; then
    changed=$((changed + 1))
    findings="${findings}  changed     $f$nl"
  fi
done <<EOF
$(find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
EOF

if [ -d "$dest" ]; then
  while IFS= read -r f; do
    if [ -z "$f" ] || in_list "$f" "$managed"; then continue; fi
    unexpected=$((unexpected + 1))
    findings="${findings}  unexpected  $f$nl"
  done <<EOF
$(cd "$dest" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
EOF
fi

if [ -z "$findings" ] && [ -f "$target/.conveyor-baseline" ]; then
  echo "ok: $account/$region matches the baseline ($files file(s) in $dest)"
  exit 0
fi
if [ ! -d "$target" ]; then
  echo "drift: $account/$region has no baseline: $target does not exist (run apply.sh)"
elif [ -z "$findings" ]; then
  echo "drift: $account/$region: no $target/.conveyor-baseline, apply.sh never finished here"
else
  echo "drift: $account/$region: $missing missing, $changed changed, $unexpected unexpected (of $files managed file(s), under $dest/)"
  printf '%s' "$findings"
fi
exit 1
