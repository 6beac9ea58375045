#!/usr/bin/env bash
# Builds skiff and runs a single-node cluster in the foreground: the control plane
# (`skiff server`) and one simulated node (`skiff agent --simulate 1`), which runs pods
# through the agent's pod workers with a simulated runtime until the containerd runtime
# lands. Ctrl-C stops both gracefully. Data (database, certificates, admin.kubeconfig)
# lives in $SKIFF_DATA_DIR (default: ./.skiff), so a second run continues where the first
# stopped. Extra arguments go to `skiff server`.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF_SETUP_MINIMAL=1 bash scripts/setup.sh
cargo build --release -p skiff
data_dir="${SKIFF_DATA_DIR:-$PWD/.skiff}"
port="${SKIFF_PORT:-6443}"
skiff=./target/release/skiff
kubeconfig="${data_dir}/admin.kubeconfig"

"$skiff" server --data-dir "$data_dir" --secure-port "$port" "$@" &
server=$!
agent=""
stop() {
    [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null || true
    kill -TERM "$server" 2>/dev/null || true
}
trap stop INT TERM

# The agent needs the admin kubeconfig, which the server writes at start.
for _ in $(seq 1 600); do
    [ -s "$kubeconfig" ] && break
    kill -0 "$server" 2>/dev/null || { wait "$server"; exit $?; }
    sleep 0.05
done
"$skiff" agent --kubeconfig "$kubeconfig" --simulate 1 &
agent=$!

cat <<MSG

skiff is running on https://127.0.0.1:${port} with one simulated node. In another terminal:

    export KUBECONFIG=${kubeconfig}
    kubectl get nodes
    kubectl create deployment web --image=nginx --replicas=3
    kubectl get pods -o wide

MSG
# A signal interrupts `wait`; keep waiting while both shut down gracefully.
while :; do
    status=0
    wait "$server" || status=$?
    kill -0 "$server" 2>/dev/null || break
done
stop
while kill -0 "$agent" 2>/dev/null; do
    wait "$agent" || true
done
exit "$status"
