//! `index.html` of one run: verdict in colour, the reproduce command with a copy button,
//! options and seed, counts, availability during faults, invariants, the counterexample,
//! the plots (embedded, so the page stands alone) and links to the raw files.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::escape::{html, truncate};
use crate::history::{value_text, History, Outcome};
use crate::plots::{css_color, duration_label, fault_color, PlotKind};
use crate::results::{Fault, RunResults, Verdict};
use crate::stats::{self, Availability};

/// Everything the page shows.
pub struct RunPage<'a> {
    pub title: String,
    pub results: &'a RunResults,
    pub history: &'a History,
    pub history_present: bool,
    pub faults: &'a [Fault],
    pub faults_from_nemesis: bool,
    /// PNG bytes per plot, embedded as data URIs.
    pub plots_png: Vec<(PlotKind, Vec<u8>)>,
    pub bucket_ns: u64,
    /// Messages for the reader: what is missing, what was re-checked.
    pub notes: Vec<String>,
    /// Raw files present in the run dir (relative paths).
    pub files: Vec<String>,
    /// (label, relative href) of the pages above: the campaign, the store.
    pub up_links: Vec<(String, String)>,
    /// The reproduce command as a person should run it (see `run::replay_command`).
    pub replay: Option<String>,
}

pub fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "#2e7d32",
        Verdict::Invalid => "#c62828",
        Verdict::Unknown => "#ef8f00",
    }
}

pub const STYLE: &str = r#"<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1320px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:4px 0 10px}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
.verdict{display:inline-block;color:#fff;font-weight:700;font-size:20px;padding:6px 18px;border-radius:6px;letter-spacing:.05em;text-transform:uppercase}
.causes{margin-left:12px;font-size:15px}
.repro{display:flex;gap:8px;align-items:stretch;margin:12px 0}
.repro pre{flex:1;margin:0;padding:8px 10px;background:#263238;color:#eceff1;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px}
button{font:inherit;padding:4px 12px;border:1px solid #888;border-radius:4px;background:#fff;cursor:pointer}
table{border-collapse:collapse;font-size:13px;margin:6px 0;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.warn{color:#ef8f00;font-weight:600}
.notes{background:#fff8e1;border:1px solid #ffe082;padding:6px 12px;border-radius:4px}
.notes li{margin:2px 0}
.missing{color:#8d6e63;font-style:italic}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:middle}
.cols{display:flex;gap:30px;flex-wrap:wrap}
.plot img{max-width:100%;border:1px solid #ddd;background:#fff}
.plot p{margin:2px 0 16px;font-size:13px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre.cex{background:#fff;border:1px solid #ddd;padding:8px;white-space:pre-wrap}
tr.stuck td{background:#ffebee}td.reason{font-weight:600;color:#b71c1c}
.cexwrap{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}.caption{font-size:12px;color:#555}
p.lead{max-width:1100px}
.why{background:#ffebee;border:1px solid #ef9a9a;padding:2px 16px 8px;border-radius:4px;margin:12px 0}.why h2{border:0;margin:10px 0 4px}
td,li,p{overflow-wrap:anywhere}table{max-width:100%}td.long{max-width:480px}
details.long summary{cursor:pointer;color:#1565c0}details.long .whole{display:block;max-height:300px;overflow:auto;word-break:break-all}
code,pre{overflow-wrap:anywhere;word-break:break-word}
</style>
"#;

/// Base64 (RFC 4648, padded), for data URIs.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn fmt_s(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "–".to_string())
}

pub fn render(page: &RunPage) -> String {
    let r = page.results;
    let verdict = r.shown_verdict();
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"minos-page\" content=\"run\">\n");
    out.push_str(&format!(
        "<meta name=\"minos-verdict\" content=\"{}\">\n",
        verdict.name()
    ));
    out.push_str(&format!(
        "<title>{} — {}</title>\n",
        html(verdict.name()),
        html(&page.title)
    ));
    out.push_str(STYLE);
    out.push_str("</head><body><main>\n");
    if !page.up_links.is_empty() {
        let links: Vec<String> = page
            .up_links
            .iter()
            .map(|(label, href)| format!("<a href=\"{}\">↑ {}</a>", html(href), html(label)))
            .collect();
        out.push_str(&format!("<nav class=\"up\">{}</nav>\n", links.join(" · ")));
    }
    out.push_str(&format!("<h1>{}</h1>\n", html(&page.title)));
    out.push_str(&format!(
        "<div><span class=\"verdict\" id=\"verdict\" style=\"background:{}\">{}</span>",
        verdict_color(verdict),
        verdict.name()
    ));
    if !r.causes.is_empty() {
        out.push_str(&format!(
            "<span class=\"causes\">{}</span>",
            html(&r.causes.join(", "))
        ));
    }
    out.push_str("</div>\n");
    match page.replay.as_ref().or(r.reproduce.as_ref()) {
        Some(cmd) => out.push_str(&format!(
            "<div class=\"repro\"><pre id=\"reproduce\">{}</pre><button id=\"copy\" type=\"button\">Copy</button></div>\n",
            html(cmd)
        )),
        None => out.push_str("<p class=\"missing\">No reproduce command recorded in results.json.</p>\n"),
    }
    let faults_note = r
        .counterexample()
        .map(|c| crate::counterexample::faults_at_violation_html(c, page.history, page.faults))
        .filter(|note| !note.is_empty());
    out.push_str(&crate::why::why_invalid_html(r, faults_note.as_deref()));
    real_html(&r.raw, &mut out);
    notes_html(page, &mut out);
    if let Some(c) = r.counterexample() {
        out.push_str(&crate::counterexample::section_html(
            c,
            page.history,
            page.faults,
        ));
    }
    if verdict == Verdict::Unknown {
        if let Some(reason) = r
            .checker
            .as_ref()
            .and_then(|c| c.get("unknown_reason"))
            .filter(|v| !v.is_null())
        {
            out.push_str(&format!(
                "<p class=\"warn\">Checker budget ran out: {}.</p>\n",
                html(&value_text(reason))
            ));
        }
    }
    summary_html(page, &mut out);
    counts_html(page, &mut out);
    out.push_str(&crate::effects::run_html(&r.raw));
    faults_html(page, &mut out);
    invariants_html(page, &mut out);
    configurations_html(&page.results.raw, &mut out);
    checker_html(page, &mut out);
    plots_html(page, &mut out);
    files_html(page, &mut out);
    out.push_str("</main>\n<script>\n");
    out.push_str(COPY_SCRIPT);
    out.push_str("</script>\n</body></html>\n");
    out
}

const COPY_SCRIPT: &str = r#"'use strict';
const copyButton = document.getElementById('copy');
if (copyButton) copyButton.addEventListener('click', () => {
  const text = document.getElementById('reproduce').textContent;
  const done = () => { copyButton.textContent = 'Copied'; setTimeout(() => copyButton.textContent = 'Copy', 1500); };
  const fallback = () => {
    // file:// pages may lack the async clipboard API: select and copy instead.
    const range = document.createRange(); range.selectNodeContents(document.getElementById('reproduce'));
    const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
    try { document.execCommand('copy'); done(); } catch (e) { copyButton.textContent = 'Press Ctrl+C'; }
  };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback); else fallback();
});
"#;

fn notes_html(page: &RunPage, out: &mut String) {
    let r = page.results;
    let mut notes: Vec<String> = page.notes.iter().map(|n| html(n)).collect();
    if !r.missing.is_empty() {
        notes.push(format!(
            "results.json lacks: {}.",
            html(&r.missing.join(", "))
        ));
    }
    for m in &r.malformed {
        notes.push(html(m));
    }
    if !page.history_present {
        notes.push("history.jsonl is missing: no counts, plots or timeline data.".to_string());
    }
    if page.history.problems_count > 0 {
        let mut text = format!(
            "history.jsonl has {} malformed or inconsistent record(s), skipped for the report:",
            page.history.problems_count
        );
        for p in &page.history.problems {
            text.push_str(&format!("<br><code>{}</code>", html(&truncate(p, 300))));
        }
        notes.push(text);
    }
    if page.faults_from_nemesis && !page.faults.is_empty() {
        notes.push("Fault intervals were derived from the history's nemesis records (results.json lists none).".to_string());
    }
    if notes.is_empty() {
        return;
    }
    out.push_str("<ul class=\"notes\">\n");
    for n in notes {
        out.push_str(&format!("<li>{n}</li>\n"));
    }
    out.push_str("</ul>\n");
}

fn kv_row(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "<tr><th>{}</th><td>{}</td></tr>\n",
        html(name),
        html(value)
    ));
}

fn summary_html(page: &RunPage, out: &mut String) {
    let r = page.results;
    out.push_str("<h2>Run</h2>\n<div class=\"cols\"><table>\n");
    let unknown = "(not recorded)".to_string();
    kv_row(out, "seed", r.seed.as_ref().unwrap_or(&unknown));
    kv_row(out, "test", r.test_name.as_ref().unwrap_or(&unknown));
    kv_row(out, "run id", r.run_id.as_ref().unwrap_or(&unknown));
    kv_row(
        out,
        "minos version",
        r.minos_version.as_ref().unwrap_or(&unknown),
    );
    kv_row(out, "ops", &page.history.ops.len().to_string());
    kv_row(
        out,
        "history records",
        &page.history.records_count.to_string(),
    );
    kv_row(
        out,
        "history end (simulated)",
        &format!("{} s", fmt_s(page.history.end_time_ns)),
    );
    if let Some(sha) = &r.history_sha256 {
        kv_row(out, "history sha256", sha);
    }
    if let Some(Value::Object(t)) = &r.timings {
        for (k, v) in t {
            kv_row(out, k, &value_text(v));
        }
    }
    out.push_str("</table>\n");
    out.push_str("<table><tr><th colspan=\"2\">options</th></tr>\n");
    match &r.options {
        Some(Value::Object(o)) => {
            for (k, v) in o {
                out.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>\n",
                    html(k),
                    crate::escape::cut_html(&value_text(v), 300)
                ));
            }
        }
        Some(other) => kv_row(out, "options", &truncate(&value_text(other), 300)),
        None => out.push_str("<tr><td colspan=\"2\" class=\"missing\">not recorded</td></tr>\n"),
    }
    out.push_str("</table></div>\n");
}

fn counts_html(page: &RunPage, out: &mut String) {
    out.push_str("<h2>Operations</h2>\n");
    let counts = stats::counts(page.history);
    if counts.is_empty() {
        out.push_str("<p class=\"missing\">No client operations in the history.</p>\n");
        return;
    }
    out.push_str("<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>pending</th><th>total</th><th>latency p50 / p99 / max (ok)</th></tr>\n");
    let mut latencies: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for op in &page.history.ops {
        if op.outcome == Outcome::Ok {
            if let Some(l) = op.latency_ns() {
                latencies.entry(op.f.as_str()).or_default().push(l);
            }
        }
    }
    let mut totals = [0u64; 4];
    for (f, by) in &counts {
        out.push_str(&format!("<tr><td>{}</td>", html(f)));
        let mut total = 0;
        for (i, o) in Outcome::ALL.iter().enumerate() {
            let n = by.get(o).copied().unwrap_or(0);
            totals[i] += n;
            total += n;
            out.push_str(&format!("<td class=\"num\">{n}</td>"));
        }
        let lat = latencies.get_mut(f.as_str()).map(|v| {
            v.sort_unstable();
            let q = |p| {
                stats::quantile(v, p)
                    .map(|ns| format!("{:.1}", ns as f64 / 1e6))
                    .unwrap_or_default()
            };
            format!("{} / {} / {} ms", q(0.5), q(0.99), q(1.0))
        });
        out.push_str(&format!(
            "<td class=\"num\">{total}</td><td class=\"num\">{}</td></tr>\n",
            lat.unwrap_or_default()
        ));
    }
    out.push_str("<tr><th>all</th>");
    for t in totals {
        out.push_str(&format!("<th class=\"num\">{t}</th>"));
    }
    out.push_str(&format!(
        "<th class=\"num\">{}</th><th></th></tr>\n</table>\n",
        totals.iter().sum::<u64>()
    ));
}

fn faults_html(page: &RunPage, out: &mut String) {
    out.push_str("<h2>Faults and availability</h2>\n");
    if page.faults.is_empty() {
        out.push_str("<p>No faults were injected (or none recorded).</p>\n");
        return;
    }
    let (per_fault, outside) = stats::availability(page.history, page.faults);
    let baseline = outside.ok_per_second();
    out.push_str(
        "<p>Ops completing while each fault was active. <i>ok/s vs. no fault</i> compares the ok throughput \
         with the throughput outside every fault.</p>\n<table><tr><th>fault</th><th>targets</th><th>start (s)</th><th>stop (s)</th>\
         <th>ok</th><th>fail</th><th>info</th><th>availability (ok / completed)</th><th>ok/s</th><th>ok/s vs. no fault</th></tr>\n",
    );
    let row = |out: &mut String, a: &Availability| {
        out.push_str(&format!(
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td>",
            a.ok,
            a.fail,
            a.info,
            pct(a.ok_fraction()),
            a.ok_per_second()
        ));
    };
    for (fault, a) in page.faults.iter().zip(&per_fault) {
        out.push_str(&format!(
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            css_color(fault_color(&fault.kind)),
            html(&fault.kind),
            crate::escape::cut_html(&fault.targets_label(), 200),
            fmt_s(fault.start_ns),
            fault.stop_ns.map(fmt_s).unwrap_or_else(|| "never healed".to_string())
        ));
        row(out, a);
        let relative = if baseline > 0.0 {
            pct(Some(a.ok_per_second() / baseline))
        } else {
            "–".to_string()
        };
        out.push_str(&format!("<td class=\"num\">{relative}</td></tr>\n"));
    }
    out.push_str("<tr><th colspan=\"4\">outside every fault</th>");
    row(out, &outside);
    out.push_str("<td class=\"num\">100%</td></tr>\n</table>\n");
}

fn invariants_html(page: &RunPage, out: &mut String) {
    let r = page.results;
    out.push_str("<h2>Invariants</h2>\n");
    match &r.invariants {
        None => out.push_str("<p class=\"missing\">No invariant results recorded.</p>\n"),
        Some(list) if list.is_empty() => out.push_str("<p>No invariants were checked.</p>\n"),
        Some(list) => {
            out.push_str("<table><tr><th>invariant</th><th>result</th><th>detail</th></tr>\n");
            for inv in list {
                let name = inv
                    .get("name")
                    .map(value_text)
                    .unwrap_or_else(|| "(unnamed)".into());
                let ok = inv.get("ok").and_then(Value::as_bool);
                let detail = inv
                    .get("detail")
                    .filter(|d| !d.is_null())
                    .map(value_text)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    html(&name),
                    match ok {
                        Some(true) => "<span class=\"ok\">✓ held</span>",
                        Some(false) => "<span class=\"bad\">✗ violated</span>",
                        None => "<span class=\"warn\">?</span>",
                    },
                    crate::escape::cut_html(&detail, 2000)
                ));
            }
            out.push_str("</table>\n");
        }
    }
    if let Some(l) = &r.liveness {
        let ok = l.get("ok").and_then(Value::as_bool);
        let detail = l
            .get("detail")
            .filter(|d| !d.is_null())
            .map(value_text)
            .unwrap_or_default();
        out.push_str(&format!(
            "<p>Liveness: {} {}</p>\n",
            match ok {
                Some(true) => "<span class=\"ok\">✓</span>",
                Some(false) => "<span class=\"bad\">✗</span>",
                None => "<span class=\"warn\">?</span>",
            },
            html(&detail)
        ));
    }
}

/// The configurations the leaders reported under membership faults (results.json
/// `configurations`): when each removal and re-addition really took effect.
fn configurations_html(raw: &Value, out: &mut String) {
    let Some(list) = raw.get("configurations").and_then(Value::as_array) else {
        return;
    };
    if list.is_empty() {
        return;
    }
    out.push_str("<h2>Cluster configurations</h2>\n");
    out.push_str(
        "<table><tr><th>seen at (s)</th><th>leader</th><th>voters</th><th>learners</th></tr>\n",
    );
    let names = |configuration: &Value, field: &str| {
        configuration
            .get(field)
            .and_then(Value::as_array)
            .map(|names| names.iter().map(value_text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    for configuration in list {
        let at = configuration
            .get("at_ns")
            .and_then(Value::as_u64)
            .map(fmt_s)
            .unwrap_or_else(|| "?".into());
        let leader = configuration
            .get("leader")
            .map(value_text)
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html(&at),
            html(&leader),
            html(&names(configuration, "voters")),
            html(&names(configuration, "learners"))
        ));
    }
    out.push_str("</table>\n");
}

fn checker_html(page: &RunPage, out: &mut String) {
    let Some(c) = &page.results.checker else {
        return;
    };
    out.push_str("<h2>Linearizability checker</h2>\n");
    let field = |n: &str| c.get(n).filter(|v| !v.is_null()).map(value_text);
    out.push_str(&format!(
        "<p>Model <code>{}</code>, verdict <b>{}</b>, {} ops, {} ms.</p>\n",
        html(&field("model").unwrap_or_else(|| "?".into())),
        html(&field("verdict").unwrap_or_else(|| "?".into())),
        html(&field("ops_count").unwrap_or_else(|| "?".into())),
        html(&field("elapsed_ms").unwrap_or_else(|| "?".into()))
    ));
    if let Some(parts) = c
        .get("partitions")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    {
        out.push_str("<table><tr><th>key</th><th>verdict</th><th>ops</th><th>states explored</th><th>ms</th></tr>\n");
        for p in parts.iter().take(200) {
            let f = |n: &str| {
                p.get(n)
                    .filter(|v| !v.is_null())
                    .map(value_text)
                    .unwrap_or_default()
            };
            let v = f("verdict");
            let class = match v.as_str() {
                "valid" => "ok",
                "invalid" => "bad",
                _ => "warn",
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                crate::escape::cut_html(&f("key"), 60),
                html(&v),
                html(&f("ops_count")),
                html(&f("states_explored")),
                html(&f("elapsed_ms"))
            ));
        }
        if parts.len() > 200 {
            out.push_str(&format!(
                "<tr><td colspan=\"5\">… {} more keys in results.json</td></tr>\n",
                parts.len() - 200
            ));
        }
        out.push_str("</table>\n");
    }
}

fn plots_html(page: &RunPage, out: &mut String) {
    out.push_str("<h2>Plots</h2>\n");
    out.push_str(&format!(
        "<p>Shaded bands are fault intervals, coloured by kind and labelled with their targets. \
         Quantiles and rates use {} buckets. <a href=\"timeline.html\">Open the timeline of every op →</a></p>\n",
        duration_label(page.bucket_ns)
    ));
    for (kind, png) in &page.plots_png {
        let stem = kind.stem();
        out.push_str(&format!(
            "<div class=\"plot\"><img id=\"plot-{stem}\" alt=\"{stem} plot\" src=\"data:image/png;base64,{}\">\
             <p><a href=\"{stem}.png\">{stem}.png</a> · <a href=\"{stem}.svg\">{stem}.svg</a></p></div>\n",
            base64(png)
        ));
    }
}

fn files_html(page: &RunPage, out: &mut String) {
    out.push_str("<h2>Files</h2>\n<ul>\n");
    for f in &page.files {
        out.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            html(&relative_href(f)),
            html(f)
        ));
    }
    out.push_str("</ul>\n");
}

/// A link to a file in the run dir: "./" keeps a name like `javascript:x` a relative path, and
/// characters with a meaning in URLs are percent-encoded.
pub fn relative_href(path: &str) -> String {
    let mut out = String::from("./");
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_listed_escaped_and_absent_without_membership_faults() {
        let mut out = String::new();
        configurations_html(&serde_json::json!({"verdict": "valid"}), &mut out);
        assert!(out.is_empty());
        let raw = serde_json::json!({"configurations": [
            {"at_ns": 1_500_000_000u64, "leader": "n2", "voters": ["n1", "n2", "n3"], "learners": []},
            {"at_ns": 4_000_000_000u64, "leader": "<n2>", "voters": ["n1", "n2", "n3"], "learners": ["n4"]}
        ]});
        configurations_html(&raw, &mut out);
        assert!(out.contains("<h2>Cluster configurations</h2>"));
        assert!(out.contains("<td>n1, n2, n3</td><td></td>"), "{out}");
        assert!(out.contains("<td>n4</td>"), "{out}");
        assert!(out.contains("&lt;n2&gt;"), "{out}");
        assert_eq!(out.matches("<tr>").count(), 3);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}

/// A real-cluster run (results.json `real`): what was tested, that it does not replay
/// bit-exactly, what it measured, and the faults in force during a violation.
fn real_html(raw: &serde_json::Value, out: &mut String) {
    let Some(real) = raw.get("real").filter(|real| real.is_object()) else {
        return;
    };
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "?".to_string(),
        other => other.to_string(),
    };
    let memory: Vec<String> = real["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|node| {
                    format!(
                        "{} {} KiB",
                        text(&node["name"]),
                        text(&node["peak_rss_kib"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "<section id=\"real\"><h2>Real cluster</h2><p>{} ({}), {} reads, real processes in real time: <b>not bit-exactly replayable</b> (the command above reruns the same ops and planned schedule). Cluster start {} ms; {} ops/s invoked, {} ok; peak memory per node: {}.</p>",
        html(&text(&real["system"])),
        html(&text(&real["version"])),
        html(&text(&real["read_mode"])),
        html(&text(&real["cluster_start_ms"])),
        html(&text(&real["ops_per_s"])),
        html(&text(&real["ok_ops_per_s"])),
        html(&memory.join(", "))
    ));
    if let Some(violation) = real.get("violation").filter(|v| v.is_object()) {
        let faults: Vec<String> = violation["faults_active"]
            .as_array()
            .map(|faults| {
                faults
                    .iter()
                    .map(|fault| format!("{} {}", text(&fault["kind"]), fault["detail"]))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "<p>Faults in force during the counterexample (t = {} ms): <b>{}</b>.</p>",
            html(&violation["window_ms"].to_string()),
            html(&if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join("; ")
            })
        ));
    }
    if !real["final_state"].is_null() {
        out.push_str(&format!(
            "<p>Final state reported by the system: <code>{}</code></p>",
            html(&real["final_state"].to_string())
        ));
    }
    out.push_str("</section>\n");
}
