//! `timeline.html`: one lane per client process plus nemesis lanes, every op a bar coloured by
//! outcome, drawn on a canvas by embedded JS (no network). All ops are embedded and drawn; when
//! zoomed out, bars sharing a pixel column are merged into one (never dropped), and the page
//! says so. Hover shows the op; the counterexample window can be highlighted and zoomed to;
//! a history with several keys can be narrowed to one. The same canvas (see [`canvas_html`])
//! draws `minos check --html`'s view of any checked history, with an [`Overlay`] that adds the
//! linearization the checker found and the state after each op.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::escape::{html, script_safe, truncate};
use crate::history::{value_text, History};
use crate::plots::{css_color, fault_color};
use crate::results::Fault;

/// Longest value text kept per op for hovers (keeps a 100k-op page to a few MB).
const VALUE_CHARS_MAX: usize = 160;

/// What the counterexample marks on the timeline (history indexes).
#[derive(Clone, Debug, Default)]
pub struct Highlight {
    pub window: Option<(u64, u64)>,
    pub prefix: BTreeSet<u64>,
    pub stuck: BTreeSet<u64>,
    /// Time span of the ops the run page's counterexample diagram draws: the timeline's
    /// counterexample view shows at least all of them.
    pub drawn_ns: Option<(u64, u64)>,
}

impl Highlight {
    /// From a CheckReport counterexample object.
    pub fn from_counterexample(c: &Value) -> Highlight {
        let indexes = |list: Option<&Value>, inner: Option<&str>| -> BTreeSet<u64> {
            list.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| {
                            let op = match inner {
                                Some(field) => v.get(field)?,
                                None => v,
                            };
                            op.get("index")?.as_u64()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let window = c.get("window").and_then(|w| {
            Some((
                w.get("first_index")?.as_u64()?,
                w.get("last_index")?.as_u64()?,
            ))
        });
        Highlight {
            window,
            prefix: indexes(c.get("linearized_prefix"), None),
            stuck: indexes(c.get("stuck"), Some("op")),
            drawn_ns: None,
        }
    }
}

/// What a view of a checked history adds to the timeline (`minos check --html`).
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// Per op of the history (same order): its 1-based place in its object's linearization
    /// (or longest linearizable prefix) and the index of the state after it in `states`.
    pub linearized: Vec<Option<(u64, usize)>>,
    /// Distinct state texts.
    pub states: Vec<String>,
    /// The key of the first error, selected by "jump to first error" (None: unkeyed).
    pub error_key: Option<String>,
    /// Times are history indexes (formats without clocks): the axis counts records.
    pub index_axis: bool,
}

/// Builds the timeline page.
pub fn timeline_html(
    title: &str,
    history: &History,
    faults: &[Fault],
    highlight: Option<&Highlight>,
) -> String {
    let ops_count = history.ops.len();
    let lanes_count = history
        .ops
        .iter()
        .map(|o| o.process)
        .collect::<BTreeSet<_>>()
        .len();
    let mut page = String::with_capacity(ops_count * 120 + 36_000);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    page.push_str(&format!("<title>{} — timeline</title>\n", html(title)));
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(STYLE);
    page.push_str("</head><body>\n");
    page.push_str(&format!(
        "<h1>{} — timeline</h1>\n<p><a href=\"index.html\">← run report</a></p>\n",
        html(title)
    ));
    page.push_str(&format!(
        "<p class=\"note\">All {ops_count} operations of {lanes_count} client processes are drawn (nothing is cut). \
         When zoomed out, operations that fall on the same pixel column of a lane are merged into one bar; \
         zoom in to separate them. Process numbers that never overlap in time share a lane (a client whose op ended in <i>info</i> \
         goes on under a new process number); the lane button switches to one lane per process number. Mouse wheel or +/− zoom around the cursor, drag to pan, hover a bar to see the op.</p>\n"
    ));
    page.push_str(&canvas_html(history, faults, highlight, None));
    page.push_str("</body></html>\n");
    page
}

/// The interactive timeline (controls, legend, canvas, data and script) as an HTML fragment;
/// `overlay` adds what a view of a checked history shows.
pub fn canvas_html(
    history: &History,
    faults: &[Fault],
    highlight: Option<&Highlight>,
    overlay: Option<&Overlay>,
) -> String {
    let mut out = String::with_capacity(history.ops.len() * 120 + 20_000);
    out.push_str(CANVAS_STYLE);
    out.push_str("<div class=\"controls\"><button id=\"zin\">+ zoom in</button> <button id=\"zout\">− zoom out</button> \
        <button id=\"reset\">whole history</button> <button id=\"lanes\"></button>");
    if highlight.is_some_and(|h| h.window.is_some() || h.drawn_ns.is_some()) {
        out.push_str(&format!(
            " <button id=\"cex\" class=\"bad\">{}</button>",
            if overlay.is_some() {
                "jump to first error"
            } else {
                "show counterexample"
            }
        ));
    }
    out.push_str(" <label id=\"keylabel\" hidden>key <select id=\"keysel\"></select></label>");
    out.push_str(" <span id=\"range\"></span></div>\n<div class=\"legend\">");
    for (name, color) in [
        ("ok", OK_COLOR),
        ("fail", FAIL_COLOR),
        ("info", INFO_COLOR),
        ("pending (never completed)", PENDING_COLOR),
    ] {
        out.push_str(&format!(
            "<span><i style=\"background:{color}\"></i>{name}</span>"
        ));
    }
    let mut kinds: Vec<&str> = faults.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        out.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{} (nemesis)</span>",
            css_color(fault_color(kind)),
            html(kind)
        ));
    }
    if overlay.is_some() {
        out.push_str("<span><i class=\"outline prefix\"></i>linearized (hover: its place in the order and the state after it)</span><span><i class=\"failing\"></i>failing op</span>");
    } else if highlight.is_some() {
        out.push_str("<span><i class=\"outline prefix\"></i>linearized prefix</span><span><i class=\"outline stuck\"></i>cannot be placed</span>");
    }
    out.push_str(
        "</div>\n<div id=\"wrap\"><canvas id=\"tl\"></canvas><div id=\"tip\"></div></div>\n",
    );
    out.push_str("<script id=\"data\" type=\"application/json\">");
    out.push_str(&timeline_data(history, faults, highlight, overlay));
    out.push_str("</script>\n<script>\n");
    out.push_str(
        &SCRIPT
            .replace("__OK__", OK_COLOR)
            .replace("__FAIL__", FAIL_COLOR)
            .replace("__INFO__", INFO_COLOR)
            .replace("__PENDING__", PENDING_COLOR),
    );
    out.push_str("</script>\n");
    out
}

pub const OK_COLOR: &str = "#3a9d4f";
pub const FAIL_COLOR: &str = "#e377a6";
pub const INFO_COLOR: &str = "#f2c12e";
pub const PENDING_COLOR: &str = "#9a9a9a";

/// The ops as columns (compact JSON), escaped for a `<script>` element.
fn timeline_data(
    history: &History,
    faults: &[Fault],
    highlight: Option<&Highlight>,
    overlay: Option<&Overlay>,
) -> String {
    let processes: Vec<u64> = history
        .ops
        .iter()
        .map(|o| o.process)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lane_of: BTreeMap<u64, usize> =
        processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut f_names: Vec<&str> = history.ops.iter().map(|o| o.f.as_str()).collect();
    f_names.sort_unstable();
    f_names.dedup();
    let f_of: BTreeMap<&str, usize> = f_names.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let mut key_names: Vec<&str> = history
        .ops
        .iter()
        .filter_map(|o| o.key.as_deref())
        .collect();
    key_names.sort_unstable();
    key_names.dedup();
    let key_of: BTreeMap<&str, usize> =
        key_names.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let end_us = history.end_time_ns.div_ceil(1000).max(1);
    let n = history.ops.len();
    let (mut lane, mut s, mut e, mut o, mut f, mut k) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut iv, mut rv, mut ix, mut cx, mut mark) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for op in &history.ops {
        lane.push(lane_of[&op.process]);
        s.push(op.invoke_time_ns / 1000);
        e.push(op.complete_time_ns.map(|t| t / 1000).unwrap_or(end_us));
        o.push(op.outcome.code());
        f.push(f_of[op.f.as_str()]);
        k.push(
            op.key
                .as_deref()
                .map(|key| key_of[key] as i64)
                .unwrap_or(-1),
        );
        iv.push(truncate(&value_text(&op.invoke_value), VALUE_CHARS_MAX));
        rv.push(if op.complete_index.is_some() {
            truncate(&value_text(&op.result), VALUE_CHARS_MAX)
        } else {
            String::new()
        });
        ix.push(op.invoke_index);
        cx.push(op.complete_index.map(|c| c as i64).unwrap_or(-1));
        let is = |set: &BTreeSet<u64>| {
            set.contains(&op.invoke_index) || op.complete_index.is_some_and(|c| set.contains(&c))
        };
        mark.push(match highlight {
            Some(h) if is(&h.stuck) => 2,
            Some(h) if is(&h.prefix) => 1,
            _ => 0,
        });
    }
    let (fault_rows, row_names) = fault_rows(faults, history.end_time_ns);
    let index_window_us = highlight.and_then(|h| h.window).map(|(first, last)| {
        // The window is in history indexes; its time span is that of the ops touching it.
        let touching = history.ops.iter().filter(|op| {
            let c = op.complete_index.unwrap_or(u64::MAX);
            (op.invoke_index >= first && op.invoke_index <= last) || (c >= first && c <= last)
        });
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for op in touching {
            lo = lo.min(op.invoke_time_ns / 1000);
            hi = hi.max(op.complete_time_ns.unwrap_or(history.end_time_ns) / 1000);
        }
        if lo > hi {
            json!(null)
        } else {
            json!([lo, hi])
        }
    });
    // The window to open on: the checker's window and every op the diagram draws.
    let drawn_us = highlight
        .and_then(|h| h.drawn_ns)
        .map(|(lo, hi)| (lo / 1000, hi / 1000));
    let window_us = match (
        index_window_us.as_ref().and_then(|w| w.as_array()),
        drawn_us,
    ) {
        (Some(w), Some((lo, hi))) if w.len() == 2 => Some(json!([
            w[0].as_u64().unwrap_or(lo).min(lo),
            w[1].as_u64().unwrap_or(hi).max(hi)
        ])),
        (_, Some((lo, hi))) => Some(json!([lo, hi])),
        (window, None) => window.map(|w| Value::Array(w.clone())),
    };
    let (order, state): (Vec<u64>, Vec<i64>) = match overlay {
        Some(overlay) => (0..n)
            .map(|i| match overlay.linearized.get(i).copied().flatten() {
                Some((place, state)) => (place, state as i64),
                None => (0, -1),
            })
            .unzip(),
        None => (Vec::new(), Vec::new()),
    };
    let error_key = overlay
        .and_then(|overlay| overlay.error_key.as_deref())
        .and_then(|key| key_of.get(key).copied())
        .map_or(-1, |key| key as i64);
    let data = json!({
        "end": end_us,
        "indexAxis": overlay.is_some_and(|overlay| overlay.index_axis),
        "ord": order, "st": state,
        "sts": overlay.map(|overlay| overlay.states.as_slice()).unwrap_or_default(),
        "errKey": error_key,
        "lanes": processes,
        "fs": f_names, "ks": key_names,
        "lane": lane, "s": s, "e": e, "o": o, "f": f, "k": k,
        "iv": iv, "rv": rv, "ix": ix, "cx": cx, "mark": mark,
        "faults": fault_rows,
        "faultRowNames": row_names,
        "window": window_us.unwrap_or(Value::Null),
    });
    script_safe(&data.to_string())
}

const STYLE: &str = r#"<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 6px}
.note{color:#555;max-width:1100px}
</style>
"#;

const CANVAS_STYLE: &str = r#"<style>
.controls{margin:8px 0}
button{font:inherit;padding:3px 10px;border:1px solid #999;border-radius:4px;background:#f6f6f6;cursor:pointer}
button.bad{border-color:#c62828;color:#c62828}
#range{color:#555;margin-left:10px}
.legend span{margin-right:14px;white-space:nowrap;font-size:13px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
.legend i.outline{border:2px solid #1565c0;background:none;box-sizing:border-box}
.legend i.outline.stuck{border:3px solid #c62828}
.legend i.failing{background:#c62828}
.legend{overflow-wrap:anywhere}
#wrap{position:relative;margin-top:8px;border:1px solid #ccc;overflow:auto;max-height:85vh}
canvas{display:block;cursor:grab}
#tip{position:absolute;display:none;pointer-events:none;background:#fffff0;border:1px solid #888;padding:4px 6px;font:12px monospace;white-space:pre;z-index:2;max-width:600px;overflow:hidden}
</style>
"#;

const SCRIPT: &str = r#"'use strict';
const D = JSON.parse(document.getElementById('data').textContent);
const N = D.s.length, AXIS_H = 24;
const COLORS = ['__OK__', '__FAIL__', '__INFO__', '__PENDING__'];
const OUTCOMES = ['ok', 'fail', 'info', 'pending'];
const faultRows = D.faultRowNames.length;
const rowKinds = D.faultRowNames;
const nemH = 16;
// Lanes: by default, process numbers that never overlap in time share a lane (a client that
// got an `info` goes on under a new process number), packed greedily in order of first op;
// the toggle gives one lane per process number.
// With several keys, a selector narrows the lanes to one key's ops (-1: every key).
let keySel = -1;
const shown = i => keySel < 0 || D.k[i] === keySel;
let packed = true, laneCount = 0, laneH = 14, laneOps = [], laneLabels = [], laneOf = [];
function layout() {
  const procFirst = new Array(D.lanes.length).fill(Infinity), procLast = new Array(D.lanes.length).fill(-1);
  for (let i = 0; i < N; i++) { if (!shown(i)) continue; const p = D.lane[i]; procFirst[p] = Math.min(procFirst[p], D.s[i]); procLast[p] = Math.max(procLast[p], D.e[i]); }
  laneOf = new Array(D.lanes.length);
  if (packed) {
    const order = D.lanes.map((_, p) => p).filter(p => procLast[p] >= 0).sort((a, b) => procFirst[a] - procFirst[b] || a - b);
    const ends = [];
    for (const p of order) {
      let l = ends.findIndex(e => e < procFirst[p]);
      if (l < 0) { l = ends.length; ends.push(0); }
      ends[l] = procLast[p]; laneOf[p] = l;
    }
    laneCount = ends.length;
  } else {
    let l = 0; D.lanes.forEach((_, p) => { if (procLast[p] >= 0) laneOf[p] = l++; }); laneCount = l;
  }
  laneOps = Array.from({length: laneCount}, () => []);
  laneLabels = Array.from({length: laneCount}, () => []);
  for (let i = 0; i < N; i++) if (shown(i)) laneOps[laneOf[D.lane[i]]].push(i);
  for (const l of laneOps) l.sort((a, b) => D.s[a] - D.s[b]);
  D.lanes.forEach((proc, p) => { if (laneOf[p] !== undefined) laneLabels[laneOf[p]].push(proc); });
  laneH = laneCount <= 60 ? 14 : Math.max(3, Math.floor(900 / laneCount));
  height = lanesTop + laneCount * laneH + 4;
  document.getElementById('lanes').textContent = packed ? 'one lane per process number' : 'share lanes between processes';
}
const canvas = document.getElementById('tl'), ctx = canvas.getContext('2d');
// The label column fits the longest row name (fault kinds, process lanes), whole.
ctx.font = '11px sans-serif';
const LABEL_W = Math.ceil(Math.max(70, ...rowKinds.map(n => ctx.measureText(n).width + 10), ...D.lanes.map(n => ctx.measureText(String(n)).width + 10)));
const tip = document.getElementById('tip'), wrap = document.getElementById('wrap');
let t0 = 0, t1 = Math.max(1, D.end);
const nemTop = AXIS_H, lanesTop = AXIS_H + faultRows * nemH + (faultRows ? 6 : 0);
let height = 0;
function width() { return Math.max(400, wrap.clientWidth - 2); }
function scale() { return (width() - LABEL_W) / (t1 - t0); }
function fmtAxis(us, step) {
  if (D.indexAxis) return '#' + Math.round(us);
  const unit = step >= 1e5 ? 1e6 : 1e3, digits = Math.max(0, -Math.floor(Math.log10(step / unit)));
  return (us / unit).toFixed(digits) + (unit === 1e6 ? ' s' : ' ms');
}
function fmt(us) { if (D.indexAxis) return '#' + us; return us >= 1e6 ? (us / 1e6).toFixed(3) + ' s' : (us / 1e3).toFixed(2) + ' ms'; }
function firstFrom(list, t) {
  let lo = 0, hi = list.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (D.e[list[mid]] < t) lo = mid + 1; else hi = mid; }
  return lo;
}
function draw() {
  const w = width(), dpr = window.devicePixelRatio || 1;
  canvas.style.width = w + 'px'; canvas.style.height = height + 'px';
  canvas.width = Math.floor(w * dpr); canvas.height = Math.floor(height * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, w, height);
  const k = scale();
  const x = t => LABEL_W + (t - t0) * k;
  // time axis
  ctx.fillStyle = '#333'; ctx.font = '11px sans-serif'; ctx.strokeStyle = '#e4e4e4';
  const span = t1 - t0, raw = span / 10, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const px = x(t); ctx.beginPath(); ctx.moveTo(px, AXIS_H - 4); ctx.lineTo(px, height); ctx.stroke();
    ctx.fillText(fmtAxis(t, step), px + 2, 12);
  }
  // nemesis lanes
  for (const f of D.faults) {
    if (f.e < t0 || f.s > t1) continue;
    const a = Math.max(LABEL_W, x(f.s)), b = Math.min(w, x(f.e)), y = nemTop + f.row * nemH;
    ctx.globalAlpha = 0.14; ctx.fillStyle = f.color; ctx.fillRect(a, lanesTop, Math.max(1, b - a), laneCount * laneH);
    ctx.globalAlpha = 1; ctx.fillRect(a, y + 1, Math.max(1, b - a), nemH - 2);
    if (b - a > 12) { ctx.fillStyle = '#000'; ctx.save(); ctx.beginPath(); ctx.rect(a, y, b - a, nemH); ctx.clip();
      ctx.fillText(f.label + (f.open ? ' (never healed)' : ''), a + 3, y + 12); ctx.restore(); }
  }
  ctx.fillStyle = '#333';
  for (let r = 0; r < faultRows; r++) ctx.fillText(rowKinds[r] || 'nemesis', 4, nemTop + r * nemH + 12);
  // client lanes; bars sharing a pixel column with the same colour are merged
  const marked = [];
  for (let l = 0; l < laneCount; l++) {
    const y = lanesTop + l * laneH, list = laneOps[l];
    if (l % 2) { ctx.fillStyle = '#f7f7f7'; ctx.fillRect(LABEL_W, y, w - LABEL_W, laneH); }
    if (laneH >= 9) { ctx.fillStyle = '#333'; const ps = laneLabels[l]; ctx.fillText('p' + ps[0] + (ps.length > 1 ? ' +' + (ps.length - 1) : ''), 4, y + laneH - 3); }
    let lastPx = -1, lastO = -1;
    for (let j = firstFrom(list, t0); j < list.length; j++) {
      const i = list[j]; if (D.s[i] > t1) break;
      const a = Math.max(LABEL_W, x(D.s[i])), b = Math.min(w, x(D.e[i]));
      const px = Math.floor(a);
      if (D.mark[i]) marked.push([i, a, b, y]);
      if (px === lastPx && D.o[i] === lastO && b - a < 1) continue;
      lastPx = px; lastO = D.o[i];
      // A view of a checked history fills failing ops red.
      ctx.fillStyle = D.ord.length && D.mark[i] === 2 ? '#c62828' : COLORS[D.o[i]];
      ctx.fillRect(a, y + 1, Math.max(1, b - a), Math.max(1, laneH - 2));
      // Wide enough: the op's place in its object's linearization.
      if (D.ord.length && D.ord[i] && b - a > 26 && laneH >= 12) {
        ctx.save(); ctx.beginPath(); ctx.rect(a, y, b - a, laneH); ctx.clip();
        ctx.fillStyle = '#fff'; ctx.fillText(String(D.ord[i]), a + 3, y + laneH - 3); ctx.restore();
      }
    }
  }
  for (const [i, a, b, y] of marked) {
    ctx.strokeStyle = D.mark[i] === 2 ? '#c62828' : '#1565c0'; ctx.lineWidth = D.mark[i] === 2 ? 3 : 2;
    ctx.strokeRect(a - 1, y, Math.max(3, b - a + 2), laneH);
  }
  ctx.lineWidth = 1;
  document.getElementById('range').textContent = 'showing ' + fmt(t0) + ' – ' + fmt(t1) + ' of ' + fmt(D.end);
}
function opAt(mx, my) {
  const l = Math.floor((my - lanesTop) / laneH);
  const t = t0 + (mx - LABEL_W) / scale(), slack = 2 / scale();
  if (my >= nemTop && my < lanesTop) {
    const row = Math.floor((my - nemTop) / nemH);
    const f = D.faults.find(f => f.row === row && f.s - slack <= t && t <= f.e + slack);
    return f ? {fault: f} : null;
  }
  if (l < 0 || l >= laneCount || mx < LABEL_W) return null;
  const list = laneOps[l];
  for (let j = firstFrom(list, t - slack); j < list.length; j++) {
    const i = list[j]; if (D.s[i] > t + slack) break;
    if (D.s[i] - slack <= t && t <= D.e[i] + slack) return {op: i};
  }
  return null;
}
function describe(hit) {
  if (hit.fault) { const f = hit.fault;
    return f.kind + '  ' + f.label + '\n' + fmt(f.s) + ' – ' + (f.open ? 'end of run (never healed)' : fmt(f.e)); }
  const i = hit.op, o = D.o[i];
  let s = 'process ' + D.lanes[D.lane[i]] + '  ' + D.fs[D.f[i]] + (D.k[i] >= 0 ? '  key ' + D.ks[D.k[i]] : '') + '\n';
  s += 'invoke #' + D.ix[i] + ' at ' + fmt(D.s[i]) + '  value ' + D.iv[i] + '\n';
  if (o === 3) s += 'never completed'; else s += OUTCOMES[o] + ' #' + D.cx[i] + ' at ' + fmt(D.e[i]) + '  result ' + D.rv[i] + '\nlatency ' + fmt(D.e[i] - D.s[i]);
  if (D.ord.length) {
    if (D.ord[i]) s += '\nlinearized #' + D.ord[i] + (D.k[i] >= 0 ? ' of key ' + D.ks[D.k[i]] : '') + '; state after it: ' + (D.st[i] >= 0 ? D.sts[D.st[i]] : '?');
    else s += '\nnot linearized';
    if (D.mark[i] === 2) s += '\nFAILING: see the counterexample above';
    return s;
  }
  if (D.mark[i] === 1) s += '\n(in the linearized prefix)';
  if (D.mark[i] === 2) s += '\n(cannot be placed: see the run report)';
  return s;
}
function zoom(factor, atX) {
  const t = t0 + (atX - LABEL_W) / scale();
  let n0 = t - (t - t0) * factor, n1 = t + (t1 - t) * factor;
  if (n1 - n0 < (D.indexAxis ? 4 : 10)) return;
  if (n0 < 0) { n1 -= n0; n0 = 0; } if (n1 > D.end) { n0 -= n1 - D.end; n1 = D.end; } n0 = Math.max(0, n0);
  t0 = n0; t1 = n1; draw();
}
canvas.addEventListener('wheel', ev => { ev.preventDefault(); zoom(ev.deltaY > 0 ? 1.25 : 0.8, ev.offsetX); }, {passive: false});
let drag = null;
canvas.addEventListener('mousedown', ev => { drag = {x: ev.clientX, t0, t1}; canvas.style.cursor = 'grabbing'; });
window.addEventListener('mouseup', () => { drag = null; canvas.style.cursor = 'grab'; });
canvas.addEventListener('mousemove', ev => {
  if (drag) {
    const dt = (ev.clientX - drag.x) / scale(), span = drag.t1 - drag.t0;
    t0 = Math.min(Math.max(0, drag.t0 - dt), D.end - span); t1 = t0 + span; draw(); return;
  }
  const hit = opAt(ev.offsetX, ev.offsetY);
  if (!hit) { tip.style.display = 'none'; return; }
  tip.textContent = describe(hit);
  tip.style.display = 'block';
  tip.style.left = Math.min(ev.offsetX + 14, width() - 320) + 'px'; tip.style.top = (ev.offsetY + 14) + 'px';
});
canvas.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
document.getElementById('zin').onclick = () => zoom(0.5, LABEL_W + (width() - LABEL_W) / 2);
document.getElementById('zout').onclick = () => zoom(2, LABEL_W + (width() - LABEL_W) / 2);
document.getElementById('reset').onclick = () => { t0 = 0; t1 = Math.max(1, D.end); draw(); };
function showWindow() {
  if (!D.window) return;
  if (D.errKey >= 0 && keySel !== D.errKey) { keySel = D.errKey; keySelect.value = String(keySel); layout(); }
  const pad = Math.max(D.indexAxis ? 2 : 1000, (D.window[1] - D.window[0]) * 0.15);
  t0 = Math.max(0, D.window[0] - pad); t1 = Math.min(D.end, D.window[1] + pad); draw();
}
const cexButton = document.getElementById('cex');
if (cexButton) cexButton.onclick = showWindow;
document.getElementById('lanes').onclick = () => { packed = !packed; layout(); draw(); };
const keySelect = document.getElementById('keysel');
if (D.ks.length > 1) {
  const add = (value, label) => { const o = document.createElement('option'); o.value = value; o.textContent = label; keySelect.appendChild(o); };
  add('-1', 'every key (' + D.ks.length + ')');
  D.ks.forEach((name, k) => add(String(k), name.length > 40 ? name.slice(0, 39) + '…' : name));
  document.getElementById('keylabel').hidden = false;
  keySelect.onchange = () => { keySel = Number(keySelect.value); layout(); draw(); };
}
// Other parts of the page (e.g. a table of keys) select a key with #key=<index>.
function selectFromHash() {
  const m = /^#key=(-?\d+)$/.exec(location.hash);
  if (m && Number(m[1]) < D.ks.length) { keySel = Number(m[1]); keySelect.value = m[1]; layout(); draw(); }
}
window.addEventListener('hashchange', selectFromHash);
window.addEventListener('resize', draw);
layout();
draw();
if (location.hash === '#counterexample') showWindow();
selectFromHash();
"#;

/// One timeline row per fault kind, and as many extra rows under it as overlapping windows of
/// that kind need, so that no window hides another. Returns the faults (with their row) and the
/// name of every row (the kind on its first row, "kind (2)" on the next, ...).
fn fault_rows(faults: &[Fault], end_ns: u64) -> (Vec<Value>, Vec<String>) {
    let mut kinds: Vec<&str> = faults.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by_key(|&i| (faults[i].start_ns, i));
    // Per kind, the end of the last window placed on each of its sub-rows.
    let mut sub_row_ends: Vec<Vec<u64>> = vec![Vec::new(); kinds.len()];
    let mut placed = vec![(0usize, 0usize); faults.len()];
    for i in order {
        let fault = &faults[i];
        let kind = kinds
            .binary_search(&fault.kind.as_str())
            .expect("kind listed");
        let ends = &mut sub_row_ends[kind];
        let sub = match ends.iter().position(|&end| end <= fault.start_ns) {
            Some(sub) => sub,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[sub] = fault.stop_or(end_ns).max(fault.start_ns + 1);
        placed[i] = (kind, sub);
    }
    let mut first_row = Vec::with_capacity(kinds.len());
    let mut names = Vec::new();
    for (kind, ends) in kinds.iter().zip(&sub_row_ends) {
        first_row.push(names.len());
        for sub in 0..ends.len() {
            names.push(if sub == 0 {
                kind.to_string()
            } else {
                format!("{kind} ({})", sub + 1)
            });
        }
    }
    let rows = faults
        .iter()
        .zip(&placed)
        .map(|(fault, &(kind, sub))| {
            json!({
                "kind": fault.kind,
                "row": first_row[kind] + sub,
                "s": fault.start_ns / 1000,
                "e": fault.stop_or(end_ns) / 1000,
                "open": fault.stop_ns.is_none(),
                "label": truncate(&fault.targets_label(), 80),
                "color": css_color(fault_color(&fault.kind)),
            })
        })
        .collect();
    (rows, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str, start_ns: u64, stop_ns: Option<u64>) -> Fault {
        Fault {
            kind: kind.to_string(),
            start_ns,
            stop_ns,
            targets: vec!["n1".to_string()],
            detail: Value::Null,
        }
    }

    #[test]
    fn overlapping_windows_of_one_kind_get_rows_of_their_own() {
        let faults = [
            fault("partition-oneway", 0, Some(50)),
            fault("kill", 10, Some(20)),
            fault("partition-oneway", 40, Some(90)),
            fault("partition-oneway", 60, None),
            fault("partition-oneway", 95, Some(99)),
        ];
        let (rows, names) = fault_rows(&faults, 100);
        assert_eq!(names, ["kill", "partition-oneway", "partition-oneway (2)"]);
        let row = |i: usize| rows[i]["row"].as_u64().unwrap();
        assert_eq!(row(1), 0);
        assert_eq!(row(0), 1);
        assert_eq!(row(2), 2, "overlaps the first window");
        assert_eq!(row(3), 1, "the first row is free again at 60");
        assert_eq!(row(4), 2, "the second row is free again at 95");
    }
}
