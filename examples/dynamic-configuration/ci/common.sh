# Shared by the ci/ scripts (sourced, not run): where the demo keeps its
# deployed services, the version a build stamps, which instance an action is
# about, SARIF and JUnit writers, and HTTP over bash's /dev/tcp.

STATE_DIR=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/conveyor-example-state}
source infra/store.sh

# The configuration version: the commit it was built from (12 hex digits).
config_version() {
  local commit=${CONVEYOR_COMMIT:-$(git rev-parse HEAD)}
  printf '%s\n' "${commit:0:12}"
}

# Sets ENVIRONMENT, PORT and NAME for an environment action: per-target runs
# (gamma, prod) get the port as the target's region, beta gets APP_PORT.
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

# sarif_add RULE LEVEL MESSAGE FILE LINE [SCORE] collects a result (SCORE: a
# CVSS-like security-severity, which the gates read before LEVEL);
# sarif_write TOOL FILE writes them all as one SARIF 2.1.0 run.
SARIF_RESULTS=()
sarif_add() {
  local properties=""
  [[ -z ${6:-} ]] || properties=",\"properties\":{\"security-severity\":\"$6\"}"
  SARIF_RESULTS+=("{\"ruleId\":$(json_string "$1"),\"level\":\"$2\",\"message\":{\"text\":$(json_string "$3")},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":$(json_string "$4")},\"region\":{\"startLine\":$5}}}]$properties}")
}
sarif_write() {
  local results
  results=$(IFS=,; printf '%s' "${SARIF_RESULTS[*]}")
  mkdir -p "$(dirname "$2")"
  printf '{"version":"2.1.0","runs":[{"tool":{"driver":{"name":%s}},"results":[%s]}]}\n' \
    "$(json_string "$1")" "$results" >"$2"
  echo "wrote $2 (${#SARIF_RESULTS[@]} result(s))"
}

# check NAME COMMAND...: runs one check, recorded as a JUnit test case;
# junit_write SUITE FILE writes the cases.
JUNIT_CASES=()
JUNIT_FAILURES=0
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok    $name"
    JUNIT_CASES+=("<testcase name=\"$name\"/>")
  else
    echo "FAIL  $name: $out"
    JUNIT_FAILURES=$((JUNIT_FAILURES + 1))
    out=$(printf '%s' "$out" | tr -d '<>&"\000-\010\013\014\016-\037')
    JUNIT_CASES+=("<testcase name=\"$name\"><failure message=\"$out\"/></testcase>")
  fi
}
junit_write() {
  mkdir -p "$(dirname "$2")"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuite name=\"$1\" tests=\"${#JUNIT_CASES[@]}\" failures=\"$JUNIT_FAILURES\">"
    printf '  %s\n' "${JUNIT_CASES[@]}"
    echo '</testsuite>'
  } >"$2"
  echo "wrote $2 (${#JUNIT_CASES[@]} test(s), $JUNIT_FAILURES failure(s))"
  [[ $JUNIT_FAILURES -eq 0 ]]
}

# request METHOD PATH: sends METHOD PATH to the instance on $PORT and prints
# the status code on the first line, the body after; fails when nothing
# answers with HTTP.
request() {
  local fd response status
  { exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' "$1" "$2" >&"$fd" 2>/dev/null || true
  response=$(timeout 10 cat <&"$fd" 2>/dev/null) || true
  exec {fd}>&-
  read -r _ status _ <<<"${response%%$'\r\n'*}"
  [[ $response == HTTP/1.[01]\ * && $status =~ ^[0-9]{3}$ ]] || return 1
  printf '%s\n%s\n' "$status" "${response#*$'\r\n\r\n'}"
}

# expect_get PATH STATUS [TEXT]: GET PATH from the instance on $PORT must
# answer STATUS with a body containing TEXT; says why not otherwise.
expect_get() {
  local fd response status body
  { exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || { echo "GET $1: nothing listens on $PORT"; return 1; }
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&"$fd"
  response=$(timeout 10 cat <&"$fd") || true
  exec {fd}>&-
  read -r _ status _ <<<"${response%%$'\r\n'*}"
  body=${response#*$'\r\n\r\n'}
  if [[ $status != "$2" ]]; then
    echo "GET $1: status $status, expected $2 (body: $body)"
    return 1
  fi
  if [[ -n ${3:-} && $body != *"$3"* ]]; then
    echo "GET $1: '$body' does not contain '$3'"
    return 1
  fi
}
