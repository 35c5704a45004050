#!/usr/bin/env bash
# Nightly chaos campaign: every fault, several workloads, fresh seeds each night, a wall-clock
# budget, then one shrink per distinct failure. Meant for a release build on a big machine or
# one shard of a CI matrix / Kubernetes Indexed Job.
#
# Environment (all optional):
#   MINOS            the binary            [${CARGO_TARGET_DIR:-target}/release/minos]
#   MINOS_OUT        the store             [store-nightly]
#   MINOS_SEEDS      the seed range        [100000 seeds from days-since-epoch * 100000]
#   MINOS_SHARD      I/N of the range      [all]
#   MINOS_BUDGET     wall clock per config [1h]
#   MINOS_JOBS       parallel runs         [cores]
#   MINOS_SHRINK     shrink one failing run per signature: 1 or 0 [1]
# Exit code: 1 if any run was invalid, else 2 if any config ran out of budget or was unknown,
# else 0 (DESIGN.md §2).
set -uo pipefail
cd "$(dirname "$0")/.."

minos="${MINOS:-${CARGO_TARGET_DIR:-target}/release/minos}"
out="${MINOS_OUT:-store-nightly}"
day=$(( $(date -u +%s) / 86400 ))
seeds="${MINOS_SEEDS:-$(( day * 100000 ))..$(( day * 100000 + 100000 ))}"
budget="${MINOS_BUDGET:-1h}"
jobs="${MINOS_JOBS:-$(nproc 2>/dev/null || echo 2)}"
shard_args=()
[ -n "${MINOS_SHARD:-}" ] && shard_args=(--shard "$MINOS_SHARD")

[ -x "$minos" ] || { echo "nightly: no minos binary at $minos (cargo build --release)"; exit 254; }
mkdir -p "$out"

# One campaign per configuration; each resumes if the script is rerun with the same seeds.
configs=(
    "--nemesis all"
    "--nemesis all --workload cas-register"
    "--nemesis all --workload mixed --key-distribution skewed"
    "--nemesis partition,partition-oneway,pause,clock --nodes 3 --clients 20 --rate 300"
)

worst=0
for config in "${configs[@]}"; do
    echo "nightly: minos campaign $config --seeds $seeds ${shard_args[*]} --budget $budget"
    # shellcheck disable=SC2086 # config is a list of words by design
    "$minos" campaign $config --seeds "$seeds" "${shard_args[@]}" --budget "$budget" \
        --jobs "$jobs" --check-determinism 100 --keep failures --out "$out" | tee "$out/last-campaign.log"
    code=${PIPESTATUS[0]}
    case "$code" in
        1) worst=1 ;;
        0) ;;
        2) [ "$worst" = 1 ] || worst=2 ;;
        *) echo "nightly: campaign failed with exit $code"; [ "$worst" = 1 ] || worst=$code ;;
    esac
    if [ "${MINOS_SHRINK:-1}" = 1 ]; then
        # The campaign prints one "shrink: minos shrink RUN_DIR" line per failure signature.
        grep -E '^    shrink: ' "$out/last-campaign.log" | sed 's/^    shrink: *//' |
        while read -r command; do
            echo "nightly: $command"
            # shellcheck disable=SC2086
            "$minos" ${command#minos } --max-runs 100 --jobs "$jobs" | tail -4
        done
    fi
done
"$minos" report --no-recheck "$out" >/dev/null 2>&1 || true
echo "nightly: store index $out/index.html"
exit "$worst"
