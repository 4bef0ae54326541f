#!/bin/sh
# Regenerates onnx.rs (prost types) from onnx-ml.proto, the official schema copied from the
# `onnx` 1.23.2 Python package (onnx/onnx-ml.proto). Needs `protoc` (Debian: protobuf-compiler).
# The generated code is committed so building edgeimg needs neither protoc nor a build script.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<'TOML'
[package]
name = "onnx-protogen"
version = "0.1.0"
edition = "2021"
[workspace]
[dependencies]
prost-build = "=0.14.6"
TOML
cat > "$work/src/main.rs" <<'RS'
fn main() {
    let dir = std::env::args().nth(1).expect("proto dir");
    prost_build::Config::new()
        .out_dir(&dir)
        .compile_protos(&[format!("{dir}/onnx-ml.proto")], &[dir.clone()])
        .expect("prost-build");
}
RS
cargo run --quiet --manifest-path "$work/Cargo.toml" -- "$here"
