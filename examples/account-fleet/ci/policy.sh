#!/usr/bin/env bash
# alpha, "policy": policy as code for the baseline. Every baseline/**/*.json
# must parse, the four guardrails must be there, and they must say what the
# organisation requires: a non-empty list of well-formed allowed regions,
# passwords of 14+ characters, a multi-region CloudTrail, GuardDuty on. Each
# violation is a SARIF result in reports/policy.sarif: error (high; the
# pipeline's policyAsCode gate allows none) or warning (medium). Like the other
# scanners it exits 0 once the report is written: the gate judges it.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh

command -v python3 >/dev/null || { echo "policy.sh needs python3 (to parse JSON)" >&2; exit 2; }
[[ -d baseline ]] || { echo "no baseline/ directory" >&2; exit 2; }

# The checks print one violation a line: rule, level, security-severity,
# file, line ("-" for none) and message, tab-separated.
findings=$(python3 - baseline <<'PY'
import json, os, re, sys

root = sys.argv[1]
out = []

def finding(rule, level, path, message, key=None):
    line = "-"
    if key is not None:
        try:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                for n, text in enumerate(f, 1):
                    if '"%s"' % key in text:
                        line = str(n)
                        break
        except OSError:
            pass
    severity = {"error": "8.0", "warning": "5.0", "note": "2.0"}[level]
    out.append("\t".join([rule, level, severity, "%s/%s" % (root, path), line, message]))

docs = {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
        if not name.endswith(".json"):
            continue
        path = os.path.relpath(os.path.join(dirpath, name), root)
        try:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                docs[path] = json.load(f)
        except json.JSONDecodeError as e:
            out.append("\t".join(["json-syntax", "error", "8.0", "%s/%s" % (root, path),
                                  str(e.lineno), "not valid JSON: %s" % e.msg]))
        except (OSError, UnicodeDecodeError) as e:
            finding("json-syntax", "error", path, "cannot be read: %s" % e)

def doc(path):
    """The guardrail as a JSON object, or None (reported) when it is missing or not an object."""
    if path not in docs:
        if not os.path.exists(os.path.join(root, path)):
            finding("required-guardrail", "error", path, "required guardrail %s is missing" % path)
        return None
    if not isinstance(docs[path], dict):
        finding("guardrail-not-object", "error", path, "must be a JSON object")
        return None
    return docs[path]

d = doc("guardrails/allowed-regions.json")
if d is not None:
    regions = d.get("regions")
    if not isinstance(regions, list) or not regions:
        finding("allowed-regions-empty", "error", "guardrails/allowed-regions.json",
                "\"regions\" must be a non-empty list: an empty allow-list denies every region", "regions")
    else:
        for r in regions:
            if not isinstance(r, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", r):
                finding("allowed-regions-invalid", "error", "guardrails/allowed-regions.json",
                        "%s is not a region name like us-east-1" % json.dumps(r), "regions")
        if len(set(map(json.dumps, regions))) != len(regions):
            finding("allowed-regions-duplicate", "warning", "guardrails/allowed-regions.json",
                    "\"regions\" lists a region twice", "regions")

d = doc("guardrails/password-policy.json")
if d is not None:
    n = d.get("MinimumPasswordLength")
    if not isinstance(n, int) or isinstance(n, bool) or n < 14:
        finding("password-min-length", "error", "guardrails/password-policy.json",
                "MinimumPasswordLength must be at least 14 (got %s)" % json.dumps(n), "MinimumPasswordLength")
    n = d.get("PasswordReusePrevention")
    if not isinstance(n, int) or isinstance(n, bool) or n < 24:
        finding("password-reuse", "warning", "guardrails/password-policy.json",
                "PasswordReusePrevention should be 24 (got %s)" % json.dumps(n), "PasswordReusePrevention")

d = doc("logging/cloudtrail.json")
if d is not None:
    if d.get("IsMultiRegionTrail") is not True:
        finding("cloudtrail-multi-region", "error", "logging/cloudtrail.json",
                "IsMultiRegionTrail must be true: activity in other regions would go unlogged", "IsMultiRegionTrail")
    if d.get("EnableLogFileValidation") is not True:
        finding("cloudtrail-log-validation", "warning", "logging/cloudtrail.json",
                "EnableLogFileValidation should be true, so tampering with logs is detectable", "EnableLogFileValidation")

d = doc("security/guardduty.json")
if d is not None and d.get("Enable") is not True:
    finding("guardduty-disabled", "error", "security/guardduty.json", "GuardDuty must be enabled (\"Enable\": true)", "Enable")

print("\n".join(out))
PY
)

while IFS=$'\t' read -r rule level severity file line message; do
  [[ -n $rule ]] || continue
  [[ $line != - ]] || line=""
  echo "$level  $rule  $file${line:+:$line}: $message"
  sarif_add "$rule" "$level" "$message" "$file" "$line" "$severity"
done <<<"$findings"

echo "checked $(find baseline -name '*.json' | wc -l) JSON file(s) in baseline/"
sarif_write baseline-policy reports/policy.sarif
