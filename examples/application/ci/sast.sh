#!/usr/bin/env bash
# Build stage, "sast": a tiny static analyser for src/*.rs, writing SARIF to
# reports/sast.sarif. `unsafe` code is an error (counts as high: the pipeline
# gate allows none), `.unwrap()` outside tests a warning (medium). Everything
# from `#[cfg(test)]` to the end of a file counts as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

mapfile -d '' files < <(find src -name '*.rs' -print0 | sort -z)
if [[ ${#files[@]} -gt 0 ]]; then
  while IFS=$'\t' read -r rule level file line; do
    case $rule in
      unsafe-code) message="unsafe code: memory safety is not checked by the compiler" ;;
      *) message=".unwrap() outside tests panics on error; handle it or use expect with a reason" ;;
    esac
    sarif_add "$rule" "$level" "$message" "$file" "$line"
  done < <(awk '
    FNR == 1 { tests = 0 }
    /^[[:space:]]*#\[cfg\(test\)\]/ { tests = 1 }
    /^[[:space:]]*\/\// { next }
    /(^|[^[:alnum:]_])unsafe([^[:alnum:]_]|$)/ { print "unsafe-code\terror\t" FILENAME "\t" FNR }
    !tests && /\.unwrap\(\)/ { print "unwrap-outside-tests\twarning\t" FILENAME "\t" FNR }
  ' "${files[@]}")
fi

sarif_write demo-sast reports/sast.sarif
