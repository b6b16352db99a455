# Shared by the ci/ scripts (sourced, not run): where the demo keeps state and
# its cargo cache, the version a build bakes in, which instance an environment
# action is about, and small writers for SARIF and JUnit reports.

# Deployed instances, pid files, logs and the fake databases (persist across actions).
STATE_DIR=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/conveyor-example-state}
# The cargo target dir the build-stage actions share.
CACHE_DIR=${DEMO_CACHE_DIR:-${TMPDIR:-/tmp}/conveyor-example-cache}

# The version the build bakes in and the tests expect: the short commit.
app_version() {
  local commit=${CONVEYOR_COMMIT:-$(git rev-parse HEAD)}
  printf '%s\n' "${commit:0:7}"
}

# Sets ENVIRONMENT, PORT and NAME for an environment action. Per-target runs
# (gamma, prod) get the port as the target's region; beta gets APP_PORT.
instance() {
  ENVIRONMENT=${CONVEYOR_ENVIRONMENT:?CONVEYOR_ENVIRONMENT is not set}
  PORT=${CONVEYOR_TARGET_REGION:-${APP_PORT:-}}
  if [[ ! $PORT =~ ^[0-9]+$ ]]; then
    echo "no port: set APP_PORT, or run per target with a numeric CONVEYOR_TARGET_REGION (got '$PORT')" >&2
    exit 2
  fi
  NAME="$ENVIRONMENT-$PORT"
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
