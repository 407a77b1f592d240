#!/usr/bin/env bash
# What one device-tool call would send: the working tree that travels with every call (tracked
# files and untracked files git does not ignore) plus the carried paths named here, against the
# tool's 64 MiB limit per call. A call over the limit is refused, so the pack scripts check their
# output with this before any device time is spent.
#
# Usage: scripts/carry-size.sh [PATH...]      exit 1 when over the limit
#        scripts/carry-size.sh --room         prints the bytes left for carried paths, nothing else
# Env:   STRATA_CARRY_MARGIN (bytes kept free for the tree growing between packing and the call;
#        default 1 MiB)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LIMIT=$((64 * 1048576))
MARGIN="${STRATA_CARRY_MARGIN:-1048576}"

tree_bytes() {  # existing tracked files + untracked, not ignored ones (what the device tool sends)
    git ls-files -z --cached --others --exclude-standard \
        | python3 -c '
import os, sys
names = [n for n in sys.stdin.buffer.read().split(b"\0") if n]
print(sum(os.lstat(n).st_size for n in names if os.path.isfile(n) and not os.path.islink(n)))'
}

TREE=$(tree_bytes)
if [ "${1:-}" = "--room" ]; then
    echo $((LIMIT - MARGIN - TREE))
    exit 0
fi
CARRIED=0
for p in "$@"; do
    [ -e "$p" ] || { echo "carry-size: $p: no such file or folder" >&2; exit 1; }
    CARRIED=$((CARRIED + $(du -sb "$p" | cut -f1)))
done
TOTAL=$((TREE + CARRIED))
mib() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }
echo "carry-size: working tree $(mib "$TREE") MiB + carried $(mib "$CARRIED") MiB = $(mib "$TOTAL") MiB of 64 MiB per call"
if [ $((TOTAL + MARGIN)) -gt "$LIMIT" ]; then
    echo "carry-size: too big for one device call ($(mib $((TOTAL + MARGIN - LIMIT))) MiB over, counting a $(mib "$MARGIN") MiB margin): carry fewer paths per call" >&2
    exit 1
fi
