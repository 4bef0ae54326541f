#!/usr/bin/env bash
# The main job: build the Raspberry Pi image and the arm64 QEMU image from their recipes, then boot
# the Pi's SD-card image as a Pi 4 on QEMU's raspi4b (no network there) and as a Pi 3 on
# raspi3b, and the arm64 QEMU image, and show them answering inferences like the host's ONNX
# Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
if [ -z "${EDGEIMG_ALPINE_MIRROR:-}" ] && ! curl -fsS -m 5 -o /dev/null https://dl-cdn.alpinelinux.org/alpine/v3.23/main/x86_64/APKINDEX.tar.gz 2>/dev/null; then
  eval "$(tests/mirror.sh)"
  echo "main-job: Alpine's mirror cannot be reached; using the offline mirror at $EDGEIMG_ALPINE_MIRROR (real Alpine 3.23 binaries, signed by its own key)"
fi

# The QEMU recipes take model and system updates: their API token and signing keys are not in git.
if [ ! -f recipes/secrets/api-token ]; then
  mkdir -p recipes/secrets
  (umask 077 && head -c 24 /dev/urandom | base64 > recipes/secrets/api-token)
fi
for keys in models system; do
  if [ ! -f "recipes/secrets/$keys.pub" ]; then
    cargo run -q --release -p edgeimg -- keygen "recipes/secrets/$keys"
  fi
done

# The recipes it boots; the x86_64 one is built and booted by the test suite (building it here
# too cost a fresh machine two more device builds, about 1.5 minutes, for nothing shown).
for recipe in recipes/pi.toml recipes/qemu-aarch64.toml; do
  cargo run -q --release -p edgeimg -- build "$recipe"
done
cargo run -q --release -p edgeimg -- test recipes/pi.toml
cargo run -q --release -p edgeimg -- test recipes/qemu-aarch64.toml
