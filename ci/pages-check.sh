#!/usr/bin/env bash
# Pages in a real browser: builds a valid run, a planted-bug run (README's failing one-liner), a
# small campaign with failures, the store index and `minos check --html` views, loads every page
# in headless Chromium and fails on JavaScript errors (uncaught exceptions, console.error,
# unhandled rejections, resources that fail to load) and on horizontal overflow (the page, or
# an element outside a scrolling box, wider than the 1280 px viewport).
#
# How: each page is copied beside itself (so relative links still resolve) with a probe script
# first in <head>; the probe records errors from the start, and after load writes its findings
# into the DOM, which `chromium --dump-dom` prints. Before the real pages, a deliberately broken
# page (a thrown error and a 3000 px wide element) must be caught, so a probe that stopped
# seeing anything fails the check instead of passing it.
#
# Usage: MINOS=target/debug/minos ci/pages-check.sh [KEEP_DIR]
#   CHROMIUM (default: chromium on PATH); MINOS_PAGES_REQUIRED=1 makes a missing Chromium an
#   error instead of a loud SKIPPED; KEEP_DIR keeps the pages there (else a temp dir, removed).
set -uo pipefail
MINOS="${MINOS:-target/debug/minos}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
MINOS_CORPUS="${MINOS_CORPUS:-$(pwd)/../shared/corpus}"
VIEWPORT_W=1280

banner() { echo; echo "************************************************************"; echo "*** $*"; echo "************************************************************"; echo; }

if [ -z "$CHROMIUM" ]; then
    if [ "${MINOS_PAGES_REQUIRED:-0}" = 1 ]; then
        echo "pages-check: chromium not found and MINOS_PAGES_REQUIRED=1"; exit 1
    fi
    banner "SKIPPED pages check: chromium not found (apt-get install -y chromium, or set CHROMIUM)"
    exit 0
fi
[ -x "$MINOS" ] || { echo "pages-check: $MINOS is not an executable (set MINOS)"; exit 1; }

if [ $# -ge 1 ]; then
    W="$1"; rm -rf "$W"; mkdir -p "$W"
else
    W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fi
W="$(cd "$W" && pwd)"
PROFILE="$W/.chromium-profile"

PROBE='<script>(function(){
var found=[];
window.addEventListener("error",function(e){var t=e.target;found.push(t&&t!==window&&(t.src||t.href)?"resource failed: "+(t.src||t.href):"uncaught: "+e.message+" at "+(e.filename||"")+":"+(e.lineno||""));},true);
window.addEventListener("unhandledrejection",function(e){found.push("unhandled rejection: "+e.reason);});
var ce=console.error;console.error=function(){found.push("console.error: "+Array.prototype.join.call(arguments," "));return ce.apply(console,arguments);};
function scrolls(el){for(var p=el.parentElement;p&&p!==document.body;p=p.parentElement){var o=getComputedStyle(p).overflowX;if(o==="auto"||o==="scroll"||o==="hidden")return true;}return false;}
function name(el){return el.tagName.toLowerCase()+(el.id?"#"+el.id:"")+(el.className&&typeof el.className==="string"?"."+el.className.split(" ").join("."):"");}
window.addEventListener("load",function(){setTimeout(function(){
var vw=document.documentElement.clientWidth,over=[];
if(document.documentElement.scrollWidth>vw+1)over.push("page is "+document.documentElement.scrollWidth+" px wide, viewport "+vw+" px");
var all=document.body.getElementsByTagName("*");
for(var i=0;i<all.length&&over.length<12;i++){var el=all[i],r=el.getBoundingClientRect();if(r.width===0||r.height===0)continue;if(r.right>vw+1&&!scrolls(el))over.push("overflow: "+name(el)+" reaches x="+Math.round(r.right));}
var pre=document.createElement("pre");pre.id="pages-check-result";
var mark="PAGES"+"-CHECK";
pre.textContent=mark+" errors="+found.length+" overflow="+over.length+"\n"+found.concat(over).join("\n")+"\n"+mark+"-END";
document.body.appendChild(pre);},300);});
})();</script>'

# Loads one page with the probe; prints its findings; returns 0 when clean.
probe() {
    local page="$1" copy out result
    copy="$(dirname "$page")/.pages-check-$(basename "$page")"
    # The probe goes right after <head> (or first), before any script of the page.
    # ENVIRON, not -v: awk would turn the probe's \n escapes into real newlines.
    PROBE="$PROBE" awk 'BEGIN{probe=ENVIRON["PROBE"]; gsub(/&/, "\\\\&", probe); done=0} { if (!done && sub(/<head>/, "<head>" probe)) done=1; print } END{ if (!done) print ENVIRON["PROBE"] }' "$page" > "$copy"
    out="$(timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$PROFILE" --window-size=${VIEWPORT_W},900 --virtual-time-budget=5000 \
        --dump-dom "file://$copy" 2>/dev/null)"
    rm -f "$copy"
    result="$(printf '%s\n' "$out" | sed -n '/PAGES-CHECK errors=/,/PAGES-CHECK-END/p' | grep -v 'PAGES-CHECK-END' \
        | sed 's/.*\(PAGES-CHECK errors=\)/\1/')"
    if [ -z "$result" ]; then
        echo "  FAIL $page: the probe wrote no result (the page did not load or hung)"
        return 1
    fi
    if printf '%s\n' "$result" | head -n1 | grep -q '^PAGES-CHECK errors=0 overflow=0$'; then
        echo "  ok   $page"
        return 0
    fi
    echo "  FAIL $page:"
    printf '%s\n' "$result" | sed 's/&gt;/>/g; s/&lt;/</g; s/&amp;/\&/g; s/^/         /'
    return 1
}

failed=0
started=$SECONDS

# 0. The probe must catch a broken page.
mkdir -p "$W/broken"
cat > "$W/broken/index.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title></head><body>
<div style="width:3000px">too wide</div><script>notDefinedAnywhere();</script></body></html>
EOF
echo "pages-check: a deliberately broken page must be caught"
if probe "$W/broken/index.html" >"$W/broken/probe.txt"; then
    cat "$W/broken/probe.txt"
    echo "pages-check: FAILED: the probe did not catch a thrown error and a 3000 px element"; exit 1
fi
grep -q "uncaught: .*notDefinedAnywhere" "$W/broken/probe.txt" && grep -q "3000\|overflow:" "$W/broken/probe.txt" \
    || { cat "$W/broken/probe.txt"; echo "pages-check: FAILED: the probe missed the error or the overflow"; exit 1; }
echo "  caught: $(grep -c . "$W/broken/probe.txt") lines of findings"

# 1. The pages: a valid run, README's failing one-liner, a small campaign with failures.
STORE="$W/store"
echo "pages-check: building pages under $W"
"$MINOS" run --seed 2 --time-limit 10s --nemesis partition,kill --nemesis-interval 2s --out "$STORE" >"$W/valid.txt" 2>&1
code=$?; [ $code = 0 ] || { tail -5 "$W/valid.txt"; echo "pages-check: the valid run exited $code (expected 0)"; exit 1; }
"$MINOS" run --seed 1 --time-limit 30s --nemesis partition,kill,loss --nemesis-interval 3s --bug no-dedup --out "$STORE" >"$W/bug.txt" 2>&1
code=$?; [ $code = 1 ] || { tail -5 "$W/bug.txt"; echo "pages-check: the bug run exited $code (expected 1)"; exit 1; }
"$MINOS" campaign --seeds 1..=6 --jobs 2 --nodes 3 --clients 4 --time-limit 4s --nemesis all --nemesis-interval 1s \
    --bug no-dedup --out "$STORE" >"$W/campaign.txt" 2>&1
code=$?; [ $code = 1 ] || { tail -5 "$W/campaign.txt"; echo "pages-check: the campaign exited $code (expected 1: some seed fails)"; exit 1; }

# 2. check --html views: the bug run's history, and a Porcupine kv history when the corpus is here.
bug_dir="$(dirname "$(grep -l '"verdict": *"invalid"' "$STORE"/*/*/results.json | head -n1)")"
"$MINOS" check "$bug_dir/history.jsonl" --html "$W/check-bug.html" >/dev/null 2>&1
code=$?; [ $code = 1 ] || { echo "pages-check: check --html of the bug run exited $code (expected 1)"; exit 1; }
valid_dir="$(dirname "$(grep -l '"verdict": *"valid"' "$STORE"/*/*/results.json | head -n1)")"
"$MINOS" check "$valid_dir/history.jsonl" --html "$W/check-valid.html" >/dev/null 2>&1
code=$?; [ $code = 0 ] || { echo "pages-check: check --html of the valid run exited $code (expected 0)"; exit 1; }
if [ -f "$MINOS_CORPUS/porcupine/test_data/kv/c10-bad.txt" ]; then
    "$MINOS" check "$MINOS_CORPUS/porcupine/test_data/kv/c10-bad.txt" --html "$W/check-kv.html" >/dev/null 2>&1
else
    banner "SKIPPED the corpus page of the pages check: no corpus at $MINOS_CORPUS"
fi

# 3. Every page.
pages=("$STORE/index.html")
campaign="$(dirname "$(find "$STORE" -name campaign.json | head -n1)")"
[ -f "$campaign/index.html" ] || { echo "pages-check: no campaign page under $STORE"; exit 1; }
pages+=("$campaign/index.html")
for dir in "$valid_dir" "$bug_dir"; do pages+=("$dir/index.html" "$dir/timeline.html"); done
# A failing run page of the campaign too (links up to the campaign and the store).
campaign_run="$(find "$campaign" -name results.json -exec grep -l '"verdict": *"invalid"' {} + | sort | head -n1)"
[ -n "$campaign_run" ] && pages+=("$(dirname "$campaign_run")/index.html" "$(dirname "$campaign_run")/timeline.html")
for page in "$W"/check-*.html; do pages+=("$page"); done
echo "pages-check: ${#pages[@]} pages at ${VIEWPORT_W} px"
checked=0
for page in "${pages[@]}"; do
    [ -f "$page" ] || { echo "  FAIL $page: missing"; failed=1; continue; }
    probe "$page" || failed=1
    checked=$((checked + 1))
done
echo "pages-check: $checked pages in $((SECONDS - started)) s"
if [ $failed != 0 ]; then
    echo "pages-check: FAILED (pages kept under $W when a KEEP_DIR is given)"
    exit 1
fi
echo "pages-check: ok"
