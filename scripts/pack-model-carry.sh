#!/usr/bin/env bash
# Splits a real model file into xz-compressed parts under target/model-carry/ so that it can reach
# the GPU machine over several device calls (each call carries at most 64 MiB, the working tree
# included; files carried by an earlier call stay there while the machine is warm).
# scripts/gpu-check.sh reassembles models/NAME from target/model-carry/NAME.xz.part* when every
# part listed in NAME.parts is present, and checks its sha256.
#
# Usage: scripts/pack-model-carry.sh models/FILE [PART_BYTES...]
#   The last size is repeated for the remaining bytes; without sizes, every part is as large as
#   one call can carry beside the working tree (scripts/carry-size.sh --room). Prints the parts
#   and checks that each, with its .parts list, fits one call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ $# -ge 1 ] || { sed -n '2,11p' "$0"; exit 2; }
SRC="$1"; shift
# Default part size: what one call carries beside the tree, less 3 MiB for the tree to grow before the calls.
[ $# -ge 1 ] || set -- "$(STRATA_CARRY_MARGIN=$((3 << 20)) bash scripts/carry-size.sh --room)"
[ -f "$SRC" ] || { echo "pack-model-carry: $SRC: no such file (scripts/fetch-models.sh)" >&2; exit 1; }
NAME="$(basename "$SRC")"
OUTDIR="$ROOT/target/model-carry"
mkdir -p "$OUTDIR"
rm -f "$OUTDIR/$NAME".xz.part* "$OUTDIR/$NAME.parts"
xz -6 -T0 -c "$SRC" > "$OUTDIR/$NAME.xz"
python3 - "$OUTDIR/$NAME.xz" "$(sha256sum "$SRC" | cut -d' ' -f1)" "$@" <<'PY'
import os, sys
path, sha, sizes = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
data = open(path, "rb").read()
parts, off, i = [], 0, 0
while off < len(data):
    n = sizes[min(i, len(sizes) - 1)]
    name = f"{path}.part{i:02d}"
    open(name, "wb").write(data[off:off + n])
    parts.append(os.path.basename(name))
    off, i = off + n, i + 1
os.remove(path)
with open(path[:-3] + ".parts", "w") as f:
    f.write(f"sha256 {sha}\n" + "".join(p + "\n" for p in parts))
for p in parts:
    print(p, os.path.getsize(os.path.join(os.path.dirname(path), p)))
PY
for part in "$OUTDIR/$NAME".xz.part*; do
    bash scripts/carry-size.sh "${part#"$ROOT"/}" "target/model-carry/$NAME.parts" > /dev/null
done
echo "pack-model-carry: every part fits one device call; carry [\"target/model-carry/$NAME.xz.partNN\", \"target/model-carry/$NAME.parts\"]"
