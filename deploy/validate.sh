#!/usr/bin/env bash
# Renders the kustomize base and every overlay and validates the result
# against the Kubernetes API schemas, offline (no cluster is needed).
#
#   bash deploy/validate.sh
#
# Environment:
#   CONVEYOR_TOOLS_DIR   where the Python venv lives (default: .tools)
#   CONVEYOR_K8S_VERSION Kubernetes version to validate against (default: 1.33.0)
# Rendered manifests are kept in $CONVEYOR_TOOLS_DIR/rendered/ for inspection.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tools_dir=${CONVEYOR_TOOLS_DIR:-.tools}
venv=$tools_dir/venv
requirements=tools/requirements.txt
k8s_version=${CONVEYOR_K8S_VERSION:-1.33.0}
kustomize_dir=deploy/kustomize
rendered_dir=$tools_dir/rendered

die() { echo "validate: $*" >&2; exit 1; }

ensure_venv() {
    [[ -x $venv/bin/python ]] && return
    command -v python3 >/dev/null || die "python3 is required"
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        # Debian's python3 ships venv without ensurepip; python3-venv adds it.
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            echo "validate: installing python3-venv (ensurepip is missing)"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        else
            die "python3 cannot create a venv (no ensurepip): install python3-venv"
        fi
    fi
    mkdir -p "$tools_dir"
    python3 -m venv "$venv" || { rm -rf "$venv"; die "python3 -m venv $venv failed"; }
}

# Reinstall only when requirements.txt changed since the last install.
ensure_requirements() {
    local stamp=$venv/.requirements.sha256 want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        echo "$want" >"$stamp"
    fi
}

command -v kubectl >/dev/null || die "kubectl is required (kubectl kustomize renders the manifests)"
ensure_venv
ensure_requirements

mkdir -p "$rendered_dir"
failed=0
for dir in "$kustomize_dir/base" "$kustomize_dir"/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    out=$rendered_dir/$name.yaml
    if ! kubectl kustomize "$dir" >"$out"; then
        echo "FAIL $dir: kubectl kustomize failed" >&2
        failed=1
        continue
    fi
    # kubernetes-validate only warns (exit 0) about a kind or apiVersion it
    # has no schema for, which is how a typo there would slip through: treat
    # any WARN as a failure.
    report=$("$venv/bin/kubernetes-validate" --strict -k "$k8s_version" --quiet "$out" 2>&1) \
        && rc=0 || rc=$?
    if [[ $rc -ne 0 || -n $report ]]; then
        echo "FAIL $dir (Kubernetes $k8s_version, strict):" >&2
        echo "$report" >&2
        failed=1
        continue
    fi
    echo "ok   $dir: $(grep -c '^kind:' "$out") resources valid for Kubernetes $k8s_version (strict)"
done
exit "$failed"
