# The configuration store of the example: infrastructure as code for where a
# service instance's configuration lives and how a version becomes active
# (sourced, not run). Every instance <environment>-<port> keeps
#
#   $STATE_DIR/instances/<name>/dynamic/versions/<version>/   one per version, never changed
#     VERSION, flags.json, settings.json
#   $STATE_DIR/instances/<name>/dynamic/current -> versions/<version>
#
# demo-app re-reads current/ when current/VERSION changes, so activating a
# version (or an older one, to roll back) needs no restart.

# store_dir NAME: the store of instance NAME.
store_dir() {
  printf '%s/instances/%s/dynamic\n' "${STATE_DIR:?}" "$1"
}

# activate NAME VERSION BUNDLE: stores BUNDLE (a directory with VERSION,
# flags.json and settings.json) as VERSION unless it is there already, then
# points current at it with one rename, so a reader never sees half a version.
activate() {
  local store version=$2 bundle=$3
  store=$(store_dir "$1")
  [[ $(cat "$bundle/VERSION") == "$version" ]] || { echo "bundle $bundle is not version $version" >&2; return 1; }
  mkdir -p "$store/versions"
  if [[ ! -d $store/versions/$version ]]; then
    local staging="$store/versions/.incoming-$version-$$"
    rm -rf "$staging"
    cp -R "$bundle" "$staging"
    mv -T "$staging" "$store/versions/$version"
  fi
  ln -sfn "versions/$version" "$store/current.next-$$"
  mv -T "$store/current.next-$$" "$store/current"
}

# active NAME: the version instance NAME has active (empty when none).
active() {
  cat "$(store_dir "$1")/current/VERSION" 2>/dev/null || true
}

# prune NAME KEEP: deletes all but the KEEP newest versions (never the active one).
prune() {
  local store current
  store=$(store_dir "$1")
  current=$(active "$1")
  ls -1dt -- "$store"/versions/*/ 2>/dev/null | tail -n +"$(($2 + 1))" |
    while read -r dir; do
      [[ $(basename "$dir") == "$current" ]] || rm -rf -- "$dir"
    done
}
