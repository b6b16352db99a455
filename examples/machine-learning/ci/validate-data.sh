#!/usr/bin/env bash
# Build stage, "validate-data": the data is the data the reference names
# (data/dataset.txt: sha256 per file), with the expected columns, numbers
# only, and enough rows to train on.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
while read -r _ role expected; do
  file=$(awk -v r="$role" '$1 == r { print $2 }' data/dataset.txt)
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [[ $actual != "$expected" ]]; then
    echo "$file: sha256 $actual, the data reference says $expected"
    status=1
  fi
  if [[ $(head -n1 "$file") != "x1,x2,y" ]]; then
    echo "$file: header is '$(head -n1 "$file")', expected x1,x2,y"
    status=1
  fi
  bad=$(awk -F, 'NR > 1 && (NF != 3 || $1 !~ /^-?[0-9.]+$/ || $2 !~ /^-?[0-9.]+$/ || $3 !~ /^-?[0-9.]+$/) { n++ } END { print n + 0 }' "$file")
  [[ $bad -eq 0 ]] || { echo "$file: $bad row(s) are not three numbers"; status=1; }
  rows=$(($(wc -l <"$file") - 1))
  echo "$role: $file, $rows rows, sha256 $actual"
done < <(grep '^sha256 ' data/dataset.txt)
train_rows=$(($(wc -l <data/train.csv) - 1))
[[ $train_rows -ge 100 ]] || { echo "only $train_rows training rows (at least 100)"; status=1; }
exit $status
