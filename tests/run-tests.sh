#!/usr/bin/env bash
# The whole test suite, on a fresh machine: set-up, the offline mirror, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
eval "$(tests/mirror.sh)"
cargo test --workspace --no-fail-fast "$@"
