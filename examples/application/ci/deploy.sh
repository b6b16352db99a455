#!/usr/bin/env bash
# beta/gamma/prod, "deploy": deploys the package in $CONVEYOR_ARTIFACTS_DIR as
# the instance <environment>-<port> (on a rollback, CONVEYOR_ROLLBACK=1, the
# package is the last good version). Stops the previous instance, unpacks the
# package under $DEMO_STATE_DIR/instances/<name>/, starts it (reading its
# dynamic configuration from $DEMO_STATE_DIR/instances/<name>/dynamic) detached so it
# outlives this action, and waits until the port accepts connections. Whether
# it is healthy is for the control plane's probes to judge, so a broken
# release still deploys.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/common.sh
source ci/http.sh
instance

package="${CONVEYOR_ARTIFACTS_DIR:?CONVEYOR_ARTIFACTS_DIR is not set}/dist/app.tar.gz"
[[ -f $package ]] || { echo "no package at $package" >&2; exit 1; }
rollback=""
if [[ ${CONVEYOR_ROLLBACK:-} == 1 ]]; then rollback=1; fi
base="$STATE_DIR/instances/$NAME"
pidfile="$base/pid"
release="release-${CONVEYOR_EXECUTION_ID:-manual}${rollback:+-rollback}"
dir="$base/$release"
mkdir -p "$base"

# running PID: alive, and not a zombie waiting to be reaped.
running() { [[ $(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) =~ ^[^ZX]$ ]]; }

# Stop the previous instance (if the pid still is a demo-app): TERM, then KILL after 5 s.
if [[ -f $pidfile ]]; then
  pid=$(cat "$pidfile")
  if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == demo-app ]] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do
      running "$pid" || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped the previous $NAME (pid $pid)"
  fi
  rm -f "$pidfile"
fi

rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$package" -C "$dir"
ln -sfn "$release" "$base/current"

# Start it in its own session, detached from this action's output; the
# wrapper shell writes its pid, then becomes demo-app.
# Dynamic configuration (examples/dynamic-configuration) and the served
# model (examples/machine-learning) live beside the releases, so they
# outlive redeploys of the service.
(cd "$dir" && setsid -f sh -c 'echo $$ >"$1" && exec ./demo-app --port "$2" --target "$3" --config-dir "$4" --dynamic-config "$5" --model "$6"' \
  demo-app "$pidfile" "$PORT" "$NAME" "$dir" "$base/dynamic" "$base/model" >"$dir/app.log" 2>&1 </dev/null)

# not_started WHY: fails the deploy, showing the instance's log.
not_started() {
  echo "demo-app $1; its log ($dir/app.log):" >&2
  cat "$dir/app.log" >&2
  rm -f "$pidfile"
  exit 1
}

# Wait (up to 10 s) until it accepts connections, failing if it exits.
ready=""
for _ in $(seq 100); do
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [[ -n $pid ]]; then
    running "$pid" || not_started "exited on start"
    if { exec {probe}<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; then
      exec {probe}>&-
      ready=1
      break
    fi
  fi
  sleep 0.1
done
# (Still running a moment later: it was not another process that got the port.)
sleep 0.2
if [[ -z $ready ]] || ! running "$pid"; then
  not_started "is not serving port $PORT after 10 s"
fi

# Keep the three newest releases of this instance.
ls -1dt -- "$base"/release-* | tail -n +4 | xargs -r -d '\n' rm -rf --

version=$(http_get "$PORT" /version | sed -n 2p) || version=unknown
digest=$(sha256sum "$package" | cut -c1-12)
echo "deployed ${rollback:+(rollback to the last good version) }demo-app $version," \
  "package sha256:$digest..., as $NAME on 127.0.0.1:$PORT (pid $pid, log $dir/app.log)"
