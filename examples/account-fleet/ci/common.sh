# Shared by the ci/ scripts (sourced, not run): which target an environment
# action is about, how to get at the packaged baseline, and small writers for
# SARIF and JUnit reports.

# The package ci/package-baseline.sh writes, and later stages get as an artifact.
PACKAGE=dist/baseline.tar.gz

# Sets ACCOUNT and REGION for an environment action: the rollout's target
# (CONVEYOR_TARGET_ACCOUNT/REGION) in a per-target run; otherwise the stage's
# environment as the account, in the region "local".
target() {
  ACCOUNT=${CONVEYOR_TARGET_ACCOUNT:-${CONVEYOR_ENVIRONMENT:-}}
  REGION=${CONVEYOR_TARGET_REGION:-local}
  if [[ -z $ACCOUNT ]]; then
    echo "no target: run per target (CONVEYOR_TARGET_ACCOUNT, CONVEYOR_TARGET_REGION) or in an environment's stage (CONVEYOR_ENVIRONMENT)" >&2
    exit 2
  fi
}

# run_baseline SCRIPT: runs `sh SCRIPT` (apply.sh or check.sh) of the
# baseline for this action's target, in a temp copy of the bundle: the one in
# $CONVEYOR_BASELINE_DIR when set (an unpacked bundle), else the package
# ($CONVEYOR_ARTIFACTS_DIR/dist/baseline.tar.gz in a later stage, or
# dist/baseline.tar.gz after ci/package-baseline.sh). A package's digest is the
# baseline version apply.sh records, unless CONVEYOR_BASELINE_VERSION is set.
# Returns the script's exit status.
run_baseline() {
  local script=$1 bundle package="" status=0
  target
  bundle=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $bundle is local
  trap "rm -rf '$bundle'" EXIT
  if [[ -n ${CONVEYOR_BASELINE_DIR:-} ]]; then
    if [[ ! -f $CONVEYOR_BASELINE_DIR/$script ]]; then
      echo "CONVEYOR_BASELINE_DIR=$CONVEYOR_BASELINE_DIR is not an unpacked baseline bundle: it has no $script" >&2
      exit 2
    fi
    cp -R "$CONVEYOR_BASELINE_DIR/." "$bundle/"
    echo "baseline: the bundle in $CONVEYOR_BASELINE_DIR"
  else
    if [[ -n ${CONVEYOR_ARTIFACTS_DIR:-} && -f $CONVEYOR_ARTIFACTS_DIR/$PACKAGE ]]; then
      package=$CONVEYOR_ARTIFACTS_DIR/$PACKAGE
    elif [[ -f $PACKAGE ]]; then
      package=$PACKAGE
    else
      echo "no baseline package: expected \$CONVEYOR_ARTIFACTS_DIR/$PACKAGE (from the package action)" \
        "or $PACKAGE (run ci/package-baseline.sh), or set CONVEYOR_BASELINE_DIR to an unpacked bundle" >&2
      exit 1
    fi
    tar -xzf "$package" -C "$bundle"
    if [[ ! -f $bundle/$script && ! -f $bundle/$(command_file "$script") ]]; then
      echo "$package is not a baseline bundle: it has no $script" >&2
      exit 1
    fi
    export CONVEYOR_BASELINE_VERSION=${CONVEYOR_BASELINE_VERSION:-${CONVEYOR_PARAM_BASELINE_VERSION:-sha256:$(sha256sum "$package" | cut -d' ' -f1)}}
    echo "baseline: $package ($CONVEYOR_BASELINE_VERSION)"
  fi
  echo "target: $ACCOUNT/$REGION under ${CONVEYOR_FLEET_ROOT:-${TMPDIR:-/tmp}/conveyor-fleet}"
  # A version from the fleet service carries its own apply and check commands.
  local commands
  commands=$(command_file "$script")
  if [[ -f $bundle/$commands ]]; then
    echo "running the version's command: $(cat "$bundle/$commands")"
    (cd "$bundle" && CONVEYOR_ACCOUNT=$ACCOUNT CONVEYOR_REGION=$REGION sh -c "$(cat "$commands")") || status=$?
  else
    (cd "$bundle" && CONVEYOR_ACCOUNT=$ACCOUNT CONVEYOR_REGION=$REGION sh "$script") || status=$?
  fi
  return "$status"
}

# command_file SCRIPT: where a fleet version's command for SCRIPT is kept.
command_file() {
  case $1 in
    apply.sh) echo .conveyor-apply ;;
    check.sh) echo .conveyor-check ;;
    *) echo ".conveyor-$1" ;;
  esac
}

# json_string TEXT: TEXT as a JSON string literal.
json_string() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}; s=${s//$'\n'/\\n}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\037')"
}

# xml_escape TEXT: TEXT safe inside an XML attribute or element.
xml_escape() {
  local s=$1
  s=${s//&/"&amp;"}; s=${s//</"&lt;"}; s=${s//>/"&gt;"}; s=${s//\"/"&quot;"}
  printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037'
}

# SARIF 2.1.0: sarif_add RULE LEVEL MESSAGE [URI [LINE [SECURITY_SEVERITY]]]
# collects a result (LEVEL error/warning/note; empty URI or LINE for none),
# sarif_write TOOL FILE writes them all as one run.
SARIF_RESULTS=()
sarif_add() {
  local extra=""
  if [[ -n ${4:-} ]]; then
    extra=",\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":$(json_string "$4")}"
    if [[ -n ${5:-} ]]; then extra+=",\"region\":{\"startLine\":$5}"; fi
    extra+="}}]"
  fi
  if [[ -n ${6:-} ]]; then extra+=",\"properties\":{\"security-severity\":\"$6\"}"; fi
  SARIF_RESULTS+=("{\"ruleId\":$(json_string "$1"),\"level\":\"$2\",\"message\":{\"text\":$(json_string "$3")}$extra}")
}
sarif_write() {
  local results
  results=$(IFS=,; printf '%s' "${SARIF_RESULTS[*]}")
  mkdir -p "$(dirname "$2")"
  printf '{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":{"name":%s,"version":"1.0"}},"results":[%s]}]}\n' \
    "$(json_string "$1")" "$results" >"$2"
  echo "wrote $2 (${#SARIF_RESULTS[@]} result(s))"
}

# JUnit: junit_case NAME [FAILURE] collects a test case (failed when FAILURE
# is given), junit_write SUITE FILE writes them as one testsuite.
JUNIT_CASES=()
JUNIT_FAILURES=0
junit_case() {
  local case="<testcase classname=\"$(xml_escape "${SUITE:-tests}")\" name=\"$(xml_escape "$1")\""
  if [[ $# -gt 1 ]]; then
    JUNIT_FAILURES=$((JUNIT_FAILURES + 1))
    local first
    first=$(grep -m1 . <<<"$2" || true)
    case+="><failure message=\"$(xml_escape "$first")\">$(xml_escape "$2")</failure></testcase>"
  else
    case+="/>"
  fi
  JUNIT_CASES+=("$case")
}
junit_write() {
  mkdir -p "$(dirname "$2")"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"$(xml_escape "$1")\" tests=\"${#JUNIT_CASES[@]}\" failures=\"$JUNIT_FAILURES\" errors=\"0\" skipped=\"0\">"
    [[ ${#JUNIT_CASES[@]} -eq 0 ]] || printf '  %s\n' "${JUNIT_CASES[@]}"
    echo '</testsuite>'
  } >"$2"
  echo "wrote $2 (${#JUNIT_CASES[@]} test(s), $JUNIT_FAILURES failure(s))"
}

# check NAME COMMAND...: runs one check and records it as a JUnit test case.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok    $name"
    junit_case "$name"
  else
    echo "FAIL  $name: $out"
    junit_case "$name" "$out"
  fi
}
