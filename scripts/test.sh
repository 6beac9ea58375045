#!/usr/bin/env bash
# The whole test suite: installs prerequisites, then lint and every test (unit, backend
# conformance against a real etcd, kubectl/Python end-to-end against a real skiff binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
