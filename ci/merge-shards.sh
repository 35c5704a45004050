#!/usr/bin/env bash
# Merges the --out directories of the shards of one campaign into DEST and rebuilds the
# campaign report over all of them:
#   ci/merge-shards.sh DEST SHARD_OUT...
# Every shard of one `minos campaign` command writes the same campaign dir name (the options'
# hash) and disjoint seeds, so merging is copying; `minos report` then aggregates every run
# dir under the campaign dir. Exit code: `minos report`'s (0 all valid, 1 any invalid, 2
# unknown). Set MINOS to the binary (default: minos on PATH).
set -euo pipefail
[ "$#" -ge 2 ] || { echo "usage: $0 DEST SHARD_OUT..."; exit 254; }
minos="${MINOS:-minos}"
dest="$1"
shift
mkdir -p "$dest"
for shard in "$@"; do
    [ -d "$shard" ] || { echo "merge: $shard is not a directory"; exit 254; }
    # `latest` links (left by a shard killed mid-run) would collide; pages are rebuilt below.
    tar -C "$shard" --exclude=latest --exclude=index.html -cf - . | tar -C "$dest" -xf -
done
"$minos" report --no-recheck "$dest"
