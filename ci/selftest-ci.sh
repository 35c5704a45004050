#!/usr/bin/env bash
# The planted-bug suite as CI runs it: a change that blinds the harness to a
# planted bug, or makes the correct build fail, fails this script (exit 1).
# Usage: [MINOS=path/to/minos] ci/selftest-ci.sh [SEEDS [MORE SELFTEST OPTIONS...]]
#   SEEDS defaults to 20; without MINOS the release binary is built and used.
set -euo pipefail
cd "$(dirname "$0")/.."
unset RUSTFLAGS
seeds="${1:-20}"
shift || true
out="$(mktemp -d)/selftest"
if [ -z "${MINOS:-}" ]; then
  cargo build --release --bin minos
  MINOS="${CARGO_TARGET_DIR:-target}/release/minos"
fi
"$MINOS" selftest --seeds "$seeds" --jobs 2 --out "$out" "$@"
