# Shared by the ci/ scripts (sourced, not run): where the demo keeps state,
# the image build, and SARIF and JUnit writers.

STATE_DIR=${DEMO_STATE_DIR:-${TMPDIR:-/tmp}/conveyor-example-state}

# build_image: assembles build/rootfs from rootfs/ (stamped with the commit)
# and packs it reproducibly into dist/rootfs.tar.gz: the same commit always
# gives the same bytes, so every action that rebuilds it scans the very
# image the package action stores.
build_image() {
  local commit=${CONVEYOR_COMMIT:-$(git rev-parse HEAD)}
  rm -rf build && mkdir -p build dist
  cp -R rootfs build/rootfs
  printf '%s\n' "${commit:0:12}" >build/rootfs/etc/demo/image-commit
  chmod -R go-w build/rootfs
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C build/rootfs -cf - . |
    gzip -n >dist/rootfs.tar.gz
  IMAGE_DIGEST="sha256:$(sha256sum dist/rootfs.tar.gz | cut -d' ' -f1)"
}

# json_string TEXT: TEXT as a JSON string literal.
json_string() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}; s=${s//$'\n'/\\n}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\037')"
}

# sarif_add RULE SEVERITY MESSAGE FILE: collects a result whose
# security-severity is SEVERITY (CVSS-like, 0-10); sarif_write TOOL FILE
# writes them as one SARIF 2.1.0 run.
SARIF_RESULTS=()
sarif_add() {
  SARIF_RESULTS+=("{\"ruleId\":$(json_string "$1"),\"level\":\"error\",\"message\":{\"text\":$(json_string "$3")},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":$(json_string "$4")}}}],\"properties\":{\"security-severity\":\"$2\"}}")
}
sarif_write() {
  local results
  results=$(IFS=,; printf '%s' "${SARIF_RESULTS[*]}")
  mkdir -p "$(dirname "$2")"
  printf '{"version":"2.1.0","runs":[{"tool":{"driver":{"name":%s}},"results":[%s]}]}\n' \
    "$(json_string "$1")" "$results" >"$2"
  echo "wrote $2 (${#SARIF_RESULTS[@]} finding(s))"
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
