#!/usr/bin/env bash
# Real-cluster smoke test: one short run per adapter (3 real nodes, real kill, pause and
# partition faults), well under 5 minutes in all. Needs root, iproute2, nftables, etcd-server
# and nats-server (.ci/run installs them); says loudly when it has to skip, and why.
set -uo pipefail
MINOS="${MINOS:-target/debug/minos}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

banner() { echo; echo "************************************************************"; echo "*** $*"; echo "************************************************************"; echo; }

if [ "$(id -u)" != 0 ]; then
    banner "SKIPPED real-cluster smoke test: not root (network namespaces and nftables need root)"
    exit 0
fi
missing=""
for tool in ip nft etcd nats-server; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    banner "SKIPPED real-cluster smoke test: missing$missing (apt-get install -y etcd-server nats-server nftables iproute2)"
    exit 0
fi

failed=0
# system, extra options, exit codes accepted
run() {
    local system="$1" accept="$2"; shift 2
    local started=$SECONDS code
    "$MINOS" run --system "$system" --nodes 3 --time-limit 12s --nemesis kill,pause,partition \
        --nemesis-interval 3s --seed 1 --no-report --out "$OUT" "$@" >"$OUT/$system.log" 2>&1
    code=$?
    echo "real smoke: $system $* -> exit $code in $((SECONDS - started)) s ($(grep -m1 '^verdict' "$OUT/$system.log"))"
    if [[ " $accept " != *" $code "* ]]; then
        echo "real smoke: $system: expected exit $accept, got $code; its output:"
        cat "$OUT/$system.log"
        failed=1
    fi
}
run etcd "0" --workload cas-register
run minos-node "0" --workload cas-register
# NATS JetStream 2.9 may be caught (exit 1): a finding about the system, not a CI failure.
run nats "0 1" --workload cas-register

# The measured quorum table on real processes (1-3 servers), with its page on the store index.
started=$SECONDS
"$MINOS" quorum --system minos-node --max-nodes 3 --out "$OUT" >"$OUT/quorum.log" 2>&1
code=$?
echo "real smoke: quorum minos-node 1-3 servers -> exit $code in $((SECONDS - started)) s"
if [ "$code" != 0 ] || ! grep -q 'quorum-minos-node/index.html' "$OUT/index.html" 2>/dev/null \
    || ! grep -q 'minos-page" content="quorum"' "$OUT/quorum-minos-node/index.html" 2>/dev/null; then
    echo "real smoke: minos quorum --system minos-node failed or wrote no page; its output:"
    cat "$OUT/quorum.log"
    failed=1
fi

leftovers="$(ip netns list | grep -c '^mn-' || true)"
if [ "$leftovers" != 0 ]; then
    echo "real smoke: $leftovers network namespaces left behind:"; ip netns list
    failed=1
fi
exit $failed
