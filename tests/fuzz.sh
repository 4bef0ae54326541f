#!/usr/bin/env bash
# Fuzz every hostile input for a bounded time: the recipe parser, the APKINDEX parser, the .apk
# reader + unpacker, the ONNX model check, edge-runtime's request decoder, and edge-init's DHCP
# reply, partition table / superblock and kernel command line parsers (tests/fuzz/).
#
#   tests/fuzz.sh [SECONDS_PER_TARGET]          every target, 60 s each by default
#   FUZZ_TARGETS="apk model" tests/fuzz.sh 300  only those
#   tests/fuzz.sh --reproduce TARGET FILE       run one input through a target once
#
# Exits non-zero if any target crashed, naming each crashing input. New inputs the fuzzer finds
# go to the cache ($EDGEIMG_CACHE/fuzz), not the repo; commit a crash's input under
# tests/fuzz/regressions/TARGET/ once it is fixed, and `cargo test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_DIR=tests/fuzz
CACHE="${EDGEIMG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeimg}/fuzz"
ARTIFACTS="$FUZZ_DIR/artifacts" # where cargo-fuzz has libFuzzer save crashing inputs
say() { echo "fuzz: $*"; }

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --quiet
fi
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage). The pinned stable
# compiler is the only one here and accepts them when told it is bootstrapping itself.
export RUSTC_BOOTSTRAP=1
fuzz() { cargo fuzz "$1" --fuzz-dir "$FUZZ_DIR" "${@:2}"; }

if [ "${1:-}" = "--reproduce" ]; then
  [ $# -eq 3 ] || { echo "usage: tests/fuzz.sh --reproduce TARGET FILE" >&2; exit 2; }
  fuzz run "$2" "$3"
  exit
fi

seconds="${1:-60}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: tests/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2; }
read -r -a targets <<<"${FUZZ_TARGETS:-$(fuzz list | tr '\n' ' ')}"

say "building ${targets[*]}"
fuzz build

crashes=()
summary=()
for target in "${targets[@]}"; do
  work="$CACHE/corpus/$target"
  mkdir -p "$work" "$ARTIFACTS/$target"
  seeds=()
  for dir in "$FUZZ_DIR/corpus/$target" "$FUZZ_DIR/regressions/$target"; do
    [ -d "$dir" ] && seeds+=("$dir")
  done
  log="$CACHE/$target.log"
  before=$(ls "$ARTIFACTS/$target" | wc -l)
  say "$target for ${seconds}s (log: $log)"
  # The first corpus folder is where libFuzzer adds what it finds; the committed ones only seed.
  # A single allocation over 512 MB is a crash: no input here legitimately needs that much.
  status=0
  fuzz run "$target" "$work" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  summary+=("$target: ${took:-?}s, ${runs:-?} executions, corpus $(ls "$work" | wc -l) inputs")
  if [ "$status" -ne 0 ] || [ "$(ls "$ARTIFACTS/$target" | wc -l)" -gt "$before" ]; then
    tail -n 40 "$log" >&2
    found=$(ls -t "$ARTIFACTS/$target" | head -n $(( $(ls "$ARTIFACTS/$target" | wc -l) - before )) )
    for f in $found; do crashes+=("$ARTIFACTS/$target/$f"); done
    [ -n "$found" ] || crashes+=("$target (exit $status, no input saved; see $log)")
  fi
done

printf 'fuzz: %s\n' "${summary[@]}"
if ((${#crashes[@]})); then
  say "CRASHES (reproduce with tests/fuzz.sh --reproduce TARGET FILE):"
  printf '  %s\n' "${crashes[@]}"
  exit 1
fi
say "no crashes"
