#!/usr/bin/env bash
# Installs what building and testing Skiff needs, idempotently. Safe to run repeatedly.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
# SKIFF_SETUP_MINIMAL=1: only what building and running needs (not the test tools).
minimal="${SKIFF_SETUP_MINIMAL:-}"
have protoc || need_pkgs+=(protobuf-compiler)
if [ -z "$minimal" ]; then
  have etcd || need_pkgs+=(etcd-server)
  have kubectl || echo "setup: kubectl is not installed; the kubectl tests need /usr/bin/kubectl and /usr/lib/google-cloud-sdk/bin/kubectl.1.NN" >&2
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${need_pkgs[*]} (run as root, or: apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need_pkgs[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ -z "$minimal" ] && ! python3 -c 'import kubernetes' >/dev/null 2>&1; then
  echo "setup: installing the Python kubernetes client" >&2
  python3 -m pip install -q kubernetes
fi

have cargo || { echo "setup: cargo is required (rustup toolchain)" >&2; exit 1; }
