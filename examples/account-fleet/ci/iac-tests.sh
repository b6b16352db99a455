#!/usr/bin/env bash
# alpha, "iac-tests": unit tests of the baseline's apply.sh and check.sh, run
# with `sh` (dash on Debian, as the fleet runs them) against a copy of
# baseline/ and a throwaway CONVEYOR_FLEET_ROOT: apply writes exactly the
# managed files and a manifest, is idempotent, check passes after it and
# catches hand edits, deletions and extra files, a re-apply repairs them, a
# new version retires files, the fail hook fails an apply, bad environments
# exit 2; and ci/apply-baseline.sh and ci/check-baseline.sh pick the right
# target and bundle. Results go to reports/iac-tests.xml (JUnit); any failure
# fails the action.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

SH=${IAC_TEST_SH:-sh}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CONVEYOR_FLEET_ROOT=$work/fleet
# Hermetic: nothing of the calling execution (a rollout's parameters included).
unset CONVEYOR_BASELINE_VERSION CONVEYOR_BASELINE_DIR CONVEYOR_ARTIFACTS_DIR \
  CONVEYOR_TARGET_ACCOUNT CONVEYOR_TARGET_REGION CONVEYOR_ENVIRONMENT \
  CONVEYOR_PARAM_BASELINE_VERSION CONVEYOR_PARAM_BASELINE_DIGEST
bundle=$work/bundle
mkdir -p "$bundle"
cp -R baseline/. "$bundle/"

# The bundle's managed files: all but the top-level apply.sh, check.sh, README.md.
managed_files() {
  (cd "$1" && find . -type f | sed 's|^\./||' | grep -vxE 'apply\.sh|check\.sh|README\.md' | LC_ALL=C sort)
}
mapfile -t MANAGED < <(managed_files "$bundle")
((${#MANAGED[@]} > 0)) || { echo "baseline/ has no managed files" >&2; exit 1; }

# run BUNDLE SCRIPT ACCOUNT REGION [VAR=VALUE...]: `sh SCRIPT` in BUNDLE for
# ACCOUNT/REGION, with its output (stdout and stderr) and exit status.
run() {
  local dir=$1 script=$2 account=$3 region=$4
  shift 4
  (cd "$dir" && env CONVEYOR_ACCOUNT="$account" CONVEYOR_REGION="$region" "$@" "$SH" "$script" 2>&1)
}
# expect STATUS TEXT COMMAND...: COMMAND exits STATUS, its output containing TEXT.
expect() {
  local want=$1 text=$2 out status=0
  shift 2
  out=$("$@" 2>&1) || status=$?
  if [[ $status -ne $want ]]; then
    printf 'exited %s, expected %s: %s\n%s\n' "$status" "$want" "$*" "$out"
    return 1
  fi
  if [[ $out != *"$text"* ]]; then
    printf 'output lacks "%s": %s\n%s\n' "$text" "$*" "$out"
    return 1
  fi
}
fail() {
  echo "$*"
  return 1
}
# snapshot DIR: every path under DIR and every file's digest.
snapshot() {
  (cd "$1" && find . | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

t_syntax() {
  local shell
  for shell in sh dash; do
    command -v "$shell" >/dev/null || continue
    "$shell" -n "$bundle/apply.sh" || fail "$shell -n apply.sh" || return 1
    "$shell" -n "$bundle/check.sh" || fail "$shell -n check.sh" || return 1
  done
}

t_apply_writes_managed_files() {
  local t=$CONVEYOR_FLEET_ROOT/t-fresh/us-east-1 f
  expect 0 "${#MANAGED[@]} written" run "$bundle" apply.sh t-fresh us-east-1 || return 1
  for f in "${MANAGED[@]}"; do
    cmp -s "$bundle/$f" "$t/baseline/$f" || fail "baseline/$f is not the bundle's $f" || return 1
  done
  [[ "$(managed_files "$t/baseline")" == "$(printf '%s\n' "${MANAGED[@]}")" ]] ||
    fail "baseline/ holds more or other files than the bundle's managed ones" || return 1
  for f in apply.sh check.sh README.md; do
    [[ ! -e $t/baseline/$f ]] || fail "$f was copied" || return 1
  done
  [[ "$(cat "$t/.conveyor-baseline")" == "$(cd "$bundle" && sha256sum "${MANAGED[@]}")" ]] ||
    fail "the manifest is not 'sha256  path' per managed file: $(cat "$t/.conveyor-baseline")" || return 1
  (cd "$t/baseline" && grep -v '^#' ../.conveyor-baseline | sha256sum --quiet -c -) || fail "sha256sum -c of the manifest" || return 1
  [[ -z "$(find "$t" -name '*.conveyor-tmp.*' -o -name '.conveyor-lock' -o -name '.conveyor-baseline.tmp.*')" ]] ||
    fail "left temp files or the lock behind: $(find "$t")"
}

t_check_passes_after_apply() {
  run "$bundle" apply.sh t-check us-east-1 >/dev/null || fail "apply failed" || return 1
  expect 0 "ok: t-check/us-east-1 matches the baseline" run "$bundle" check.sh t-check us-east-1
}

t_apply_is_idempotent() {
  local t=$CONVEYOR_FLEET_ROOT/t-idem/eu-west-1 before
  run "$bundle" apply.sh t-idem eu-west-1 >/dev/null || fail "first apply failed" || return 1
  before=$(snapshot "$t")
  expect 0 "0 written, ${#MANAGED[@]} unchanged, 0 retired, 0 unmanaged removed" run "$bundle" apply.sh t-idem eu-west-1 || return 1
  [[ "$(snapshot "$t")" == "$before" ]] || fail "a second apply changed the target: $(diff <(echo "$before") <(snapshot "$t"))"
}

t_check_catches_a_hand_edit() {
  local f=$CONVEYOR_FLEET_ROOT/t-edit/us-east-1/baseline/guardrails/password-policy.json
  run "$bundle" apply.sh t-edit us-east-1 >/dev/null || fail "apply failed" || return 1
  sed -i 's/"MinimumPasswordLength": 14/"MinimumPasswordLength": 8/' "$f"
  ! cmp -s "$f" "$bundle/guardrails/password-policy.json" || fail "the edit did not change the file" || return 1
  expect 1 "changed     guardrails/password-policy.json" run "$bundle" check.sh t-edit us-east-1
}

t_check_catches_an_edit_keeping_size_and_mtime() {
  local f=$CONVEYOR_FLEET_ROOT/t-sneaky/us-east-1/baseline/security/guardduty.json
  run "$bundle" apply.sh t-sneaky us-east-1 >/dev/null || fail "apply failed" || return 1
  cp -p "$f" "$work/mtime"
  sed -i '0,/true/s//TRUE/' "$f"
  touch -r "$work/mtime" "$f"
  expect 1 "changed     security/guardduty.json" run "$bundle" check.sh t-sneaky us-east-1
}

t_check_catches_missing_and_unexpected_files() {
  local t=$CONVEYOR_FLEET_ROOT/t-files/us-east-1
  run "$bundle" apply.sh t-files us-east-1 >/dev/null || fail "apply failed" || return 1
  rm "$t/baseline/logging/cloudtrail.json"
  mkdir -p "$t/baseline/extra"
  echo '{}' >"$t/baseline/extra/open-bucket.json"
  expect 1 "missing     logging/cloudtrail.json" run "$bundle" check.sh t-files us-east-1 || return 1
  expect 1 "unexpected  extra/open-bucket.json" run "$bundle" check.sh t-files us-east-1
}

t_check_catches_a_symlink() {
  local f=$CONVEYOR_FLEET_ROOT/t-link/us-east-1/baseline/logging/cloudtrail.json
  run "$bundle" apply.sh t-link us-east-1 >/dev/null || fail "apply failed" || return 1
  rm "$f"
  ln -s "$bundle/logging/cloudtrail.json" "$f"
  expect 1 "changed     logging/cloudtrail.json (not a regular file)" run "$bundle" check.sh t-link us-east-1
}

t_reapply_repairs_drift() {
  local t=$CONVEYOR_FLEET_ROOT/t-repair/us-east-1
  run "$bundle" apply.sh t-repair us-east-1 >/dev/null || fail "apply failed" || return 1
  echo '{"Enable": false}' >"$t/baseline/security/guardduty.json"
  rm "$t/baseline/guardrails/allowed-regions.json"
  echo stray >"$t/baseline/stray.txt"
  expect 1 "1 missing, 1 changed, 1 unexpected" run "$bundle" check.sh t-repair us-east-1 || return 1
  expect 0 "2 written, $((${#MANAGED[@]} - 2)) unchanged, 0 retired, 1 unmanaged removed" run "$bundle" apply.sh t-repair us-east-1 || return 1
  expect 0 "ok:" run "$bundle" check.sh t-repair us-east-1 || return 1
  [[ ! -e $t/baseline/stray.txt ]] || fail "stray.txt is still there"
}

t_new_version_retires_files() {
  local t=$CONVEYOR_FLEET_ROOT/t-upgrade/us-east-1 v2=$work/bundle-v2 retired
  mkdir -p "$v2"
  cp -R "$bundle/." "$v2/"
  rm -r "$v2/security"
  echo '{"RequiredTags": ["owner", "cost-center"]}' >"$v2/guardrails/tag-policy.json"
  retired=$(find "$bundle/security" -type f | wc -l)
  run "$bundle" apply.sh t-upgrade us-east-1 >/dev/null || fail "apply of v1 failed" || return 1
  expect 0 "applied baseline v2 to t-upgrade/us-east-1: $((${#MANAGED[@]} - retired + 1)) file(s), 1 written, $((${#MANAGED[@]} - retired)) unchanged, $retired retired, 0 unmanaged removed" \
    run "$v2" apply.sh t-upgrade us-east-1 CONVEYOR_BASELINE_VERSION=v2 || return 1
  [[ ! -e $t/baseline/security ]] || fail "security/ (gone in v2) is still there" || return 1
  cmp -s "$v2/guardrails/tag-policy.json" "$t/baseline/guardrails/tag-policy.json" || fail "tag-policy.json not written" || return 1
  [[ "$(head -n1 "$t/.conveyor-baseline")" == "# version: v2" ]] || fail "manifest: $(cat "$t/.conveyor-baseline")" || return 1
  expect 0 "ok:" run "$v2" check.sh t-upgrade us-east-1 || return 1
  expect 1 "missing     security/guardduty.json" run "$bundle" check.sh t-upgrade us-east-1 || return 1
  expect 1 "unexpected  guardrails/tag-policy.json" run "$bundle" check.sh t-upgrade us-east-1
}

t_fail_hook_fails_the_apply() {
  local t=$CONVEYOR_FLEET_ROOT/t-hook/us-east-1 before
  run "$bundle" apply.sh t-hook us-east-1 >/dev/null || fail "apply failed" || return 1
  echo edited >"$t/baseline/logging/cloudtrail.json"
  touch "$t/.conveyor-fail-apply"
  before=$(snapshot "$t")
  expect 1 ".conveyor-fail-apply exists" run "$bundle" apply.sh t-hook us-east-1 || return 1
  [[ "$(snapshot "$t")" == "$before" ]] || fail "the failed apply changed the target" || return 1
  rm "$t/.conveyor-fail-apply"
  expect 0 "1 written" run "$bundle" apply.sh t-hook us-east-1 || return 1
  expect 0 "ok:" run "$bundle" check.sh t-hook us-east-1
}

t_bad_environment_exits_2() {
  local script
  for script in apply.sh check.sh; do
    expect 2 "CONVEYOR_ACCOUNT is not set" \
      bash -c 'cd "$1" && env -u CONVEYOR_ACCOUNT CONVEYOR_REGION=us-east-1 "$2" "$3"' _ "$bundle" "$SH" "$script" || return 1
    expect 2 "CONVEYOR_REGION is not set" \
      bash -c 'cd "$1" && env -u CONVEYOR_REGION CONVEYOR_ACCOUNT=dev-1 "$2" "$3"' _ "$bundle" "$SH" "$script" || return 1
    expect 2 "CONVEYOR_ACCOUNT='../escape' is not a valid account id" run "$bundle" "$script" ../escape us-east-1 || return 1
    expect 2 "CONVEYOR_ACCOUNT='Prod_1' is not a valid account id" run "$bundle" "$script" Prod_1 us-east-1 || return 1
    expect 2 "CONVEYOR_REGION='eu west 1' is not a valid region" run "$bundle" "$script" dev-1 'eu west 1' || return 1
    expect 2 "CONVEYOR_FLEET_ROOT must be an absolute path" \
      run "$bundle" "$script" dev-1 us-east-1 CONVEYOR_FLEET_ROOT=relative/fleet || return 1
  done
  [[ ! -e $work/escape && ! -e $CONVEYOR_FLEET_ROOT/dev-1 ]] || fail "a refused run created a directory"
}

t_targets_are_isolated() {
  local t=$CONVEYOR_FLEET_ROOT/t-iso
  expect 1 "t-iso/us-east-1 has no baseline" run "$bundle" check.sh t-iso us-east-1 || return 1
  run "$bundle" apply.sh t-iso us-east-1 >/dev/null || fail "apply failed" || return 1
  run "$bundle" apply.sh t-iso eu-west-1 >/dev/null || fail "apply failed" || return 1
  echo '{}' >"$t/us-east-1/baseline/guardrails/allowed-regions.json"
  expect 1 "changed     guardrails/allowed-regions.json" run "$bundle" check.sh t-iso us-east-1 || return 1
  expect 0 "ok:" run "$bundle" check.sh t-iso eu-west-1 || return 1
  expect 1 "has no baseline" run "$bundle" check.sh t-iso-2 eu-west-1
}

t_runs_from_any_directory() {
  expect 0 "applied baseline" bash -c 'cd / && CONVEYOR_ACCOUNT=t-cwd CONVEYOR_REGION=us-east-1 "$1" "$2/apply.sh"' _ "$SH" "$bundle" || return 1
  expect 0 "ok:" bash -c 'cd / && CONVEYOR_ACCOUNT=t-cwd CONVEYOR_REGION=us-east-1 "$1" "$2/check.sh"' _ "$SH" "$bundle"
}

t_ci_scripts_use_the_environment_as_account() {
  expect 0 "applied baseline (no version) to sandbox/local" \
    env CONVEYOR_BASELINE_DIR="$bundle" CONVEYOR_ENVIRONMENT=sandbox ci/apply-baseline.sh || return 1
  expect 0 "ok: sandbox/local" env CONVEYOR_BASELINE_DIR="$bundle" CONVEYOR_ENVIRONMENT=sandbox ci/check-baseline.sh || return 1
  expect 2 "no target" env CONVEYOR_BASELINE_DIR="$bundle" ci/apply-baseline.sh
}

t_ci_scripts_apply_the_package_to_the_target() {
  local artifacts=$work/artifacts digest t=$CONVEYOR_FLEET_ROOT/prod-eu-1/eu-west-1
  mkdir -p "$artifacts/dist"
  tar -C "$bundle" -czf "$artifacts/$PACKAGE" .
  digest=$(sha256sum "$artifacts/$PACKAGE" | cut -d' ' -f1)
  expect 0 "applied baseline sha256:$digest to prod-eu-1/eu-west-1" \
    env CONVEYOR_ARTIFACTS_DIR="$artifacts" CONVEYOR_ENVIRONMENT=fleet \
    CONVEYOR_TARGET_ACCOUNT=prod-eu-1 CONVEYOR_TARGET_REGION=eu-west-1 ci/apply-baseline.sh || return 1
  [[ "$(head -n1 "$t/.conveyor-baseline")" == "# version: sha256:$digest" ]] || fail "manifest: $(cat "$t/.conveyor-baseline")" || return 1
  echo '{}' >"$t/baseline/guardrails/password-policy.json"
  expect 1 "changed     guardrails/password-policy.json" \
    env CONVEYOR_ARTIFACTS_DIR="$artifacts" CONVEYOR_TARGET_ACCOUNT=prod-eu-1 CONVEYOR_TARGET_REGION=eu-west-1 ci/check-baseline.sh
}

SUITE=iac
# Every t_* function above, in order.
for test in $(sed -n 's/^\(t_[a-z0-9_]*\)() {$/\1/p' ci/iac-tests.sh); do
  check "${test#t_}" "$test"
done
junit_write iac-tests reports/iac-tests.xml
((JUNIT_FAILURES == 0))
