#!/usr/bin/env bash
# Nightly score of the generic harness: every planted bug (with or without a bespoke
# schedule) under the generic campaign (--nemesis all, `minos run` defaults otherwise, 30 s
# runs), seeds to first detection beside the bespoke schedule's, the median, and the correct
# build under the same generic profile on every seed. Too slow for per-commit CI (a missed bug
# runs every seed): run it nightly on a release build.
# Usage: [MINOS=path/to/minos] ci/selftest-generic.sh [SEEDS [MORE SELFTEST OPTIONS...]]
#   SEEDS defaults to 200; MINOS_JOBS (default: cores) runs in parallel.
# Exit code: 1 if the correct build was flagged or a bespoke schedule missed its bug (generic
# misses are the score, printed in the table, not a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
unset RUSTFLAGS
seeds="${1:-200}"
shift || true
out="${MINOS_OUT:-$(mktemp -d)/selftest-generic}"
if [ -z "${MINOS:-}" ]; then
  cargo build --release --bin minos
  MINOS="${CARGO_TARGET_DIR:-target}/release/minos"
fi
jobs="${MINOS_JOBS:-$(nproc 2>/dev/null || echo 2)}"
"$MINOS" selftest --generic --seeds "$seeds" --jobs "$jobs" --out "$out" "$@"
