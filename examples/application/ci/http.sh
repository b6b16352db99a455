# HTTP/1.1 over bash's /dev/tcp, since curl may be missing (sourced, not run).
# Every function prints the status code on the first line and the body after.

# http_request PORT RAW: sends RAW as-is to 127.0.0.1:PORT; fails when the
# connection cannot be made or ends without an HTTP answer.
http_request() {
  local fd response head status
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf '%s' "$2" >&"$fd" 2>/dev/null || true
  response=$(timeout 10 cat <&"$fd" 2>/dev/null) || true
  exec {fd}>&-
  head=${response%%$'\r\n'*}
  read -r _ status _ <<<"$head"
  [[ $response == HTTP/1.[01]\ * && $status =~ ^[0-9]{3}$ ]] || return 1
  if [[ $response == *$'\r\n\r\n'* ]]; then
    printf '%s\n%s\n' "$status" "${response#*$'\r\n\r\n'}"
  else
    printf '%s\n\n' "$status"
  fi
}

# http_get PORT PATH
http_get() {
  local request
  printf -v request 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1"
  http_request "$1" "$request"
}

# expect_get PORT PATH STATUS [TEXT]: fails, saying why, unless GET PATH
# answers STATUS with a body containing TEXT.
expect_get() {
  local response status body
  response=$(http_get "$1" "$2") || { echo "GET $2: no answer on port $1"; return 1; }
  status=${response%%$'\n'*}
  body=${response#*$'\n'}
  if [[ $status != "$3" ]]; then
    echo "GET $2: status $status, expected $3 (body: $body)"
    return 1
  fi
  if [[ -n ${4:-} && $body != *"$4"* ]]; then
    echo "GET $2: body '$body' does not contain '$4'"
    return 1
  fi
}
