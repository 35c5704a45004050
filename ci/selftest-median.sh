#!/usr/bin/env bash
# Seeds to first detection per planted bug, median over several independent selftest
# campaigns (seed bases 1, 1001, 2001, ...). Needs python3 for the summary.
# Usage: ci/selftest-median.sh [CAMPAIGNS] [SEEDS]   (defaults 5 and 20)
set -euo pipefail
cd "$(dirname "$0")/.."
campaigns="${1:-5}"
seeds="${2:-20}"
target="${CARGO_TARGET_DIR:-target}"
minos="$target/release/minos"
work="$(mktemp -d)"
for i in $(seq 0 $((campaigns - 1))); do
  "$minos" selftest --json --no-correct --seeds "$seeds" --seed-base $((1 + 1000 * i)) \
    --jobs 2 --out "$work/runs" > "$work/campaign-$i.json" || true
done
python3 - "$work" "$campaigns" "$seeds" <<'PY'
import json, statistics, sys, glob
work, campaigns, seeds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
by_bug = {}
for path in sorted(glob.glob(f"{work}/campaign-*.json")):
    for bug in json.load(open(path))["bugs"]:
        by_bug.setdefault(bug["bug"], []).append(bug)
print(f"{'bug':<26} {'caught':>8} {'median seeds':>13}  per campaign (- = not caught in {seeds})")
for name, runs in by_bug.items():
    found = [r["seeds_to_detection"] for r in runs if r["seeds_to_detection"]]
    median = statistics.median(found) if found else "-"
    cells = " ".join(str(r["seeds_to_detection"] or "-") for r in runs)
    print(f"{name:<26} {len(found):>4}/{len(runs):<3} {median!s:>13}  {cells}")
PY
