#!/usr/bin/env bash
# Build (or reuse) the offline Alpine mirror and print the two variables that point edgeimg at
# it: `eval "$(tests/mirror.sh)"`. The mirror is signed with a key of its own, trusted explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${EDGEIMG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeimg}"
MIRROR="$CACHE/mirror"
cargo run -q --release -p edgeimg-mirror -- --out "$MIRROR" >&2
key=$(ls "$MIRROR"/keys/*.rsa.pub | head -n 1)
echo "export EDGEIMG_ALPINE_MIRROR='$MIRROR'"
echo "export EDGEIMG_ALPINE_KEYS='$key'"
