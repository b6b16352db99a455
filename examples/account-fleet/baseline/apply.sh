#!/bin/sh
# Applies this baseline to one target, the directory
# $CONVEYOR_FLEET_ROOT/$CONVEYOR_ACCOUNT/$CONVEYOR_REGION/ (the root defaults to
# ${TMPDIR:-/tmp}/conveyor-fleet). Every file of the bundle except apply.sh,
# check.sh and README.md is "managed": each is written to <target>/baseline/
# through a temp file and mv; whatever else is under baseline/ (files a previous
# version had, hand-made ones) is removed; then <target>/.conveyor-baseline
# records "sha256  path" per managed file, and CONVEYOR_BASELINE_VERSION when
# set. Running it again changes nothing. POSIX sh: the fleet runs `sh apply.sh`
# from inside the unpacked bundle, and sh is dash on Debian.
# Exit status: 0 applied, 1 failed, 2 bad environment.
set -eu
cd "$(dirname "$0")"

nl='
'
die() {
  echo "apply.sh: $2" >&2
  exit "$1"
}

# --- The target, from the environment --------------------------------------
# check_id NAME WHAT EXAMPLE: $NAME is set and only lowercase letters, digits, '-'.
check_id() {
  eval "value=\${$1:-}"
  case $value in
    '') die 2 "$1 is not set: the $2 to apply to, e.g. $1=$3" ;;
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
version=${CONVEYOR_BASELINE_VERSION:-}
case $version in
  *"$nl"*) die 2 "CONVEYOR_BASELINE_VERSION must be a single line" ;;
esac
target=$root/$account/$region
dest=$target/baseline
manifest=$target/.conveyor-baseline

# The test hook: lets an end-to-end test make this one target's apply fail.
if [ -e "$target/.conveyor-fail-apply" ]; then
  die 1 "refusing to apply to $account/$region: $target/.conveyor-fail-apply exists (the test hook that fails an apply; remove it to apply)"
fi

# --- The managed files, as "sha256  path" lines -----------------------------
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

managed=''
body=''
while IFS= read -r f; do
  case $f in
    # Not managed: the bundle's own scripts, and the commands a package
    # step adds (.conveyor-apply, .conveyor-check).
    '' | apply.sh | check.sh | README.md | .conveyor-*) continue ;;
    *[!A-Za-z0-9._/@+-]*) die 1 "unsupported file name in the bundle: '$f' (use letters, digits, '.', '_', '-', '+', '@', '/')" ;;
  esac
  if [ ! -f "$f" ] || [ -L "$f" ]; then
    die 1 "not a regular file in the bundle: $f"
  fi
  managed=$managed$f$nl
  body="$body$(sha256_of "$f")  $f$nl"
done <<EOF
$(find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
EOF

# --- Apply -------------------------------------------------------------------
mkdir -p "$dest"

# One apply per target at a time (a lock still there after 30 s of waiting is
# taken to be left over by a killed run). Temp files go away with the lock,
# whatever happens.
lock=$target/.conveyor-lock
tmp=''
tries=0
until mkdir "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 300 ]; then
    echo "apply.sh: taking over a stale lock: $lock" >&2
    break
  fi
  sleep 0.1
done
trap 'rm -f -- "$manifest.tmp.$$" ${tmp:+"$tmp"}; rmdir "$lock" 2>/dev/null || :' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Remove what this version does not manage: files a previous version had
# ("retired", per the previous manifest) and anything else ("unmanaged").
previous=''
if [ -f "$manifest" ]; then
  previous=$(sed -n 's/^[0-9a-f]\{64\}  //p' "$manifest")$nl
fi
retired=0
unmanaged=0
while IFS= read -r f; do
  if [ -z "$f" ] || in_list "$f" "$managed"; then continue; fi
  rm -f -- "$dest/$f"
  if in_list "$f" "$previous"; then
    retired=$((retired + 1))
  else
    unmanaged=$((unmanaged + 1))
  fi
done <<EOF
$(cd "$dest" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
EOF
# ... and the directories that left empty.
(cd "$dest" && find . -depth -type d ! -name .) | while IFS= read -r d; do
  rmdir -- "$dest/$d" 2>/dev/null || :
done

# Write each managed file whose content differs, through a temp file and mv.
written=0
unchanged=0
while read -r sum f; do
  [ -n "$f" ] || continue
  to=$dest/$f
  if [ -f "$to" ] && [ ! -L "$to" ] && [ "$(sha256_of "$to")" = "$sum" ]; then
    unchanged=$((unchanged + 1))
    continue
  fi
  if [ -d "$to" ] && [ ! -L "$to" ]; then rm -rf -- "$to"; fi
  mkdir -p -- "$(dirname -- "$to")"
  tmp=$to.conveyor-tmp.$$
  cp -- "$f" "$tmp"
  mv -f -- "$tmp" "$to"
  tmp=''
  written=$((written + 1))
done <<EOF
$body
EOF

# The manifest last: it describes what is in place.
{
  if [ -n "$version" ]; then echo "# version: $version"; fi
  printf '%s' "$body"
} >"$manifest.tmp.$$"
mv -f -- "$manifest.tmp.$$" "$manifest"

echo "applied baseline ${version:-(no version)} to $account/$region: $((written + unchanged)) file(s)," \
  "$written written, $unchanged unchanged, $retired retired, $unmanaged unmanaged removed ($dest)"
