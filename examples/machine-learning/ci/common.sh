# Shared by the ci/ scripts (sourced, not run): where the demo keeps state,
# training, and JUnit and SARIF writers.

STATE_DIR=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/conveyor-example-state}

# The model version: the commit it was trained from (12 hex digits).
model_version() {
  local commit=${CONVEYOR_COMMIT:-$(git rev-parse HEAD)}
  printf '%s\n' "${commit:0:12}"
}

# train_model: fits the model the parameters describe on the training data
# into build/model.txt. Deterministic: the same commit gives the same model,
# so evaluate and register, each in a fresh clone, see what train made.
train_model() {
  # shellcheck source=/dev/null
  source model/params.env
  mkdir -p build
  awk -v features="${FEATURES:?model/params.env sets no FEATURES}" -f model/train.awk data/train.csv >build/model.txt
}

# Sets PORT and NAME for a deploy or test action: per-target runs get the
# port as the target's region, beta gets APP_PORT.
instance() {
  PORT=${CONVEYOR_TARGET_REGION:-${APP_PORT:-}}
  [[ $PORT =~ ^[0-9]+$ ]] || { echo "no port (got '$PORT')" >&2; exit 2; }
  NAME="${CONVEYOR_ENVIRONMENT:?}-$PORT"
}

# get PATH: the body of GET PATH from the service on $PORT (fails without an answer).
get() {
  local fd response
  { exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&"$fd"
  response=$(timeout 10 cat <&"$fd") || true
  exec {fd}>&-
  [[ $response == "HTTP/1."?" 200 "* ]] || { echo "GET $1: ${response%%$'\r'*}"; return 1; }
  printf '%s\n' "${response#*$'\r\n\r\n'}"
}

# check NAME COMMAND...: one JUnit test case; junit_write SUITE FILE writes
# them and fails if any failed.
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
