#!/usr/bin/env bash
# gamma, "resilience-tests": abuses this target's instance (a malformed
# request, a connection closed without a request, an idle connection held
# open) and checks it still serves GET / meanwhile and afterwards. (Not
# /health: on a broken release that is 503, which is for the probes to judge.)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

fail() { echo "FAIL: $*" >&2; exit 1; }

response=$(http_request "$PORT" $'NONSENSE\r\n\r\n') || fail "no answer to a malformed request"
[[ ${response%%$'\n'*} == 400 ]] || fail "malformed request answered ${response%%$'\n'*}, expected 400"
echo "malformed request: 400"

{ exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || fail "cannot connect"
exec {fd}>&-
echo "connection closed without a request: survived"

{ exec {idle}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || fail "cannot connect"
printf 'GET / HT' >&"$idle"
failure=$(expect_get "$PORT" / 200 hello) || fail "while a client stalls: $failure"
exec {idle}>&-
echo "GET / while another client stalls: 200"

failure=$(expect_get "$PORT" / 200 hello) || fail "afterwards: $failure"
echo "$NAME still serves GET /: 200"
