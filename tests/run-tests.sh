#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up, the offline mirror, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
eval "$(tests/mirror.sh)"
# Two cores: two tests at a time keeps QEMU boots (TCG) within their timeouts.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
cargo test --workspace --no-fail-fast "$@"
