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
# cargo-nextest runs all test binaries' tests from one queue; .config/nextest.toml says how
# many at a time and in what order.
cargo nextest run --workspace "$@"
# nextest does not run doc tests.
cargo test --workspace --doc --quiet
