#!/usr/bin/env bash
# Builds skiff and runs a single-node control plane in the foreground. Ctrl-C stops it
# gracefully. Data (database, certificates, admin.kubeconfig) lives in $SKIFF_DATA_DIR
# (default: ./.skiff), so a second run continues where the first stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF_SETUP_MINIMAL=1 bash scripts/setup.sh
cargo build --release -p skiff
data_dir="${SKIFF_DATA_DIR:-$PWD/.skiff}"
port="${SKIFF_PORT:-6443}"
cat <<MSG

skiff is starting on https://127.0.0.1:${port}. In another terminal:

    export KUBECONFIG=${data_dir}/admin.kubeconfig
    kubectl get namespaces

MSG
exec ./target/release/skiff server --data-dir "$data_dir" --secure-port "$port" "$@"
