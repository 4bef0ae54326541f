#!/usr/bin/env bash
# Build (or reuse) the offline Alpine mirror, in the edgeimg cache, and print the two variables
# that point edgeimg at it: `eval "$(tests/mirror.sh)"`. The mirror is signed with a key of its
# own, trusted explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p edgeimg-mirror -- --env
