#!/usr/bin/env bash
# Runs the regression scenarios of ci/regression.scenarios with a built `minos` and fails when
# any scenario's exit code differs from what it expects.
#   ci/regression.sh                 # uses $MINOS, else ${CARGO_TARGET_DIR:-target}/debug/minos
#   MINOS=target/release/minos ci/regression.sh
# Results go under $MINOS_REGRESSION_OUT (default ${CARGO_TARGET_DIR:-target}/regression); a
# failing scenario's runs stay there (`minos report DIR` builds their HTML reports).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
minos="${MINOS:-$target_dir/debug/minos}"
out="${MINOS_REGRESSION_OUT:-$target_dir/regression}"
scenarios="${MINOS_REGRESSION_SCENARIOS:-ci/regression.scenarios}"
jobs="${MINOS_JOBS:-$(nproc 2>/dev/null || echo 2)}"

[ -x "$minos" ] || { echo "regression: no minos binary at $minos (cargo build first)"; exit 1; }
rm -rf "$out"
mkdir -p "$out"

failed=()
count=0
while read -r name expect args; do
    case "$name" in ''|'#'*) continue ;; esac
    count=$((count + 1))
    started=$(date +%s)
    set +e
    # shellcheck disable=SC2086 # ARGS is a list of words by design
    "$minos" campaign $args --jobs "$jobs" --name "$name" --out "$out" --no-report \
        >"$out/$name.log" 2>&1
    code=$?
    set -e
    seconds=$(( $(date +%s) - started ))
    summary=$(grep -E '^[0-9]+ seeds: ' "$out/$name.log" | tail -1 || true)
    if [ "$code" = "$expect" ]; then
        echo "regression: ok   $name (exit $code, ${seconds}s) $summary"
    else
        echo "regression: FAIL $name: exit $code, expected $expect (${seconds}s) $summary"
        sed 's/^/    /' "$out/$name.log" | grep -v '^    campaign \[' | tail -20
        failed+=("$name")
    fi
done < "$scenarios"

if [ "${#failed[@]}" -gt 0 ]; then
    echo "regression: ${#failed[@]} of $count scenarios failed: ${failed[*]}"
    exit 1
fi
echo "regression: all $count scenarios as expected"
