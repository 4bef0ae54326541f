#!/usr/bin/env bash
# Benchmark `edgeimg flash` against dd (and bmaptool copy, when installed) on one image, to
# files in a scratch folder. Builds nothing: set EDGEIMG to the binary (default: edgeimg on
# PATH). edgeimg also reads every written range back to verify it; dd and bmaptool do not.
#
#   EDGEIMG=target/release/edgeimg tests/bench-flash.sh images/edge-pi/edge-pi.img [SCRATCH_DIR]
set -euo pipefail

IMAGE=${1:?usage: $0 IMAGE [SCRATCH_DIR] (IMAGE.bmap or IMAGE-without-extension.bmap beside it)}
EDGEIMG=${EDGEIMG:-edgeimg}
SCRATCH=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/bench-flash.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

BMAP=""
for b in "$IMAGE.bmap" "${IMAGE%.*}.bmap"; do [ -f "$b" ] && { BMAP=$b; break; }; done
if [ -z "$BMAP" ]; then echo "bench-flash: no bmap beside $IMAGE; edgeimg will write everything" >&2; fi

seconds() { # seconds CMD...: wall time of CMD, its output discarded
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "bench-flash: failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

size=$(stat -c %s "$IMAGE")
if [ -n "$BMAP" ]; then
  mapped=$(sed -n 's:.*<MappedBlocksCount> *\([0-9]*\) *</MappedBlocksCount>.*:\1:p' "$BMAP")
  blocks=$(sed -n 's:.*<BlocksCount> *\([0-9]*\) *</BlocksCount>.*:\1:p' "$BMAP")
  share=$(awk -v m="$mapped" -v b="$blocks" 'BEGIN { print 100 * m / b }')
else
  share=100
fi

t_edge=$(seconds "$EDGEIMG" flash --file --yes "$IMAGE" "$SCRATCH/edgeimg.img")
t_dd=$(seconds dd if="$IMAGE" of="$SCRATCH/dd.img" bs=4M conv=fsync status=none)
printf 'image            %s (%d MiB, %.1f%% mapped)\n' "$IMAGE" $((size >> 20)) "$share"
printf 'edgeimg flash    %6.2f s  (write + fsync + read-back verify)\n' "$t_edge"
printf 'dd bs=4M fsync   %6.2f s  (write + fsync)\n' "$t_dd"
if command -v bmaptool >/dev/null && [ -n "$BMAP" ]; then
  t_bmap=$(seconds bmaptool copy --bmap "$BMAP" "$IMAGE" "$SCRATCH/bmaptool.img")
  printf 'bmaptool copy    %6.2f s\n' "$t_bmap"
fi
printf 'dd / edgeimg     %6.2fx\n' "$(awk -v d="$t_dd" -v e="$t_edge" 'BEGIN { print d / e }')"
