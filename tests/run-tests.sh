#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up, the lint gates, the offline mirror, then
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
# Lint gates first: a formatting slip, a clippy warning or a broken doc link fails in minutes,
# not after the long tests.
cargo fmt --all --check
cargo fmt --check --manifest-path tests/fuzz/Cargo.toml   # its own workspace
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
eval "$(tests/mirror.sh)"
# Two cores: two tests at a time keeps QEMU boots (TCG) within their timeouts.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
cargo test --workspace --no-fail-fast "$@"
