//! The campaign page (`<campaign>/index.html`): every run found under the campaign dir in a
//! table, latency and availability aggregated over all runs, and failures grouped by
//! signature so that a thousand failing seeds of one bug read as one line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::atomic::write_atomic;
use crate::discover::{relative_path, run_dirs};
use crate::escape::{html, truncate};
use crate::faults::fault_intervals;
use crate::histogram::LogHistogram;
use crate::history::{self, value_text, Outcome};
use crate::plots::{css_color, fault_color};
use crate::results::{RunResults, Verdict};
use crate::run::{load_history_text, load_results, run_title};
use crate::run_page::{verdict_color, STYLE};
use crate::stats::{self, Availability};
use crate::ReportError;

/// What a campaign amounted to.
#[derive(Clone, Debug, Default)]
pub struct CampaignSummary {
    pub runs_count: usize,
    pub valid_count: usize,
    pub invalid_count: usize,
    pub unknown_count: usize,
}

impl CampaignSummary {
    /// DESIGN.md §2 for campaigns: invalid if any run is, else unknown if any is, else valid.
    pub fn verdict(&self) -> Verdict {
        if self.invalid_count > 0 {
            Verdict::Invalid
        } else if self.unknown_count > 0 || self.runs_count == 0 {
            Verdict::Unknown
        } else {
            Verdict::Valid
        }
    }
}

struct RunRow {
    dir: PathBuf,
    title: String,
    seed: Option<String>,
    verdict: Verdict,
    causes: Vec<String>,
    ops_count: usize,
    faults_count: usize,
    duration_ns: u64,
    signature: Option<String>,
    has_page: bool,
    reproduce: Option<String>,
    /// determinism.json of the run: was the seed's second run byte-identical?
    deterministic: Option<bool>,
}

/// A failure's signature: verdict, causes and the counterexample's reasons with numbers and
/// quoted values blanked, so that the same bug on different seeds groups together.
pub fn failure_signature(results: &RunResults) -> String {
    let mut parts = vec![results.shown_verdict().name().to_string()];
    if !results.causes.is_empty() {
        parts.push(results.causes.join(", "));
    }
    if let Some(c) = results.counterexample() {
        let mut reasons: Vec<String> = c
            .get("stuck")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|s| {
                        let f = s
                            .get("op")
                            .and_then(|o| o.get("f"))
                            .map(value_text)
                            .unwrap_or_default();
                        let reason = s.get("reason").map(value_text).unwrap_or_default();
                        format!("{f}: {}", blank_values(&reason))
                    })
                    .collect()
            })
            .unwrap_or_default();
        reasons.sort();
        reasons.dedup();
        if !reasons.is_empty() {
            parts.push(reasons.join("; "));
        }
    }
    if results.shown_verdict() == Verdict::Unknown {
        if let Some(r) = results
            .checker
            .as_ref()
            .and_then(|c| c.get("unknown_reason"))
            .filter(|r| !r.is_null())
        {
            parts.push(value_text(r));
        }
    }
    parts.join(" · ")
}

/// A path as one shell word: quoted when it holds anything but plain characters.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn blank_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// Writes only `<campaign_dir>/junit.xml` (one test case per run), from the runs'
/// results.json alone: what `minos campaign --no-report` still gives CI.
pub fn write_campaign_junit(campaign_dir: &Path) -> Result<(), ReportError> {
    let mut cases = Vec::new();
    for dir in run_dirs(campaign_dir)
        .iter()
        .filter(|d| d.as_path() != campaign_dir)
    {
        let results = load_results(dir)?
            .unwrap_or_else(|| RunResults::empty_because("results.json is missing"));
        let name = match &results.seed {
            Some(seed) => format!("seed {seed}"),
            None => relative_path(campaign_dir, dir),
        };
        let ops = results.ops_count.unwrap_or(0) as usize;
        let seed = results.seed.as_deref().and_then(|s| s.parse::<u64>().ok());
        cases.push((
            seed.unwrap_or(u64::MAX),
            crate::exports::junit_testcase(&results, &name, ops),
        ));
    }
    cases.sort_by_key(|(seed, _)| *seed);
    let cases: Vec<_> = cases.into_iter().map(|(_, case)| case).collect();
    write_atomic(
        &campaign_dir.join("junit.xml"),
        crate::exports::campaign_junit_xml(&campaign_name(campaign_dir), &cases).as_bytes(),
    )
}

/// Writes `<campaign_dir>/index.html` over every run dir found below it.
pub fn write_campaign_report(campaign_dir: &Path) -> Result<CampaignSummary, ReportError> {
    let dirs = run_dirs(campaign_dir);
    let mut rows = Vec::with_capacity(dirs.len());
    let mut latency: BTreeMap<String, LogHistogram> = BTreeMap::new();
    let mut by_fault_kind: BTreeMap<String, Availability> = BTreeMap::new();
    let mut outside_all = Availability::default();
    let mut summary = CampaignSummary::default();
    let mut exercised = crate::effects::Exercised::default();
    let mut junit_cases = Vec::with_capacity(dirs.len());
    for dir in dirs.iter().filter(|d| d.as_path() != campaign_dir) {
        let results = load_results(dir)?
            .unwrap_or_else(|| RunResults::empty_because("results.json is missing"));
        // One history in memory at a time: campaigns can hold thousands of runs.
        let history = load_history_text(dir)?
            .map(|t| history::parse_jsonl(&t))
            .unwrap_or_default();
        for op in &history.ops {
            if op.outcome == Outcome::Ok {
                if let Some(l) = op.latency_ns() {
                    latency.entry(op.f.clone()).or_default().record(l);
                }
            }
        }
        let (faults, _) = fault_intervals(results.faults.as_ref(), &history.nemesis);
        let (per_fault, outside) = stats::availability(&history, &faults);
        for (fault, a) in faults.iter().zip(per_fault) {
            let agg = by_fault_kind.entry(fault.kind.clone()).or_default();
            agg.ok += a.ok;
            agg.fail += a.fail;
            agg.info += a.info;
            agg.duration_ns += a.duration_ns;
        }
        outside_all.ok += outside.ok;
        outside_all.fail += outside.fail;
        outside_all.info += outside.info;
        outside_all.duration_ns += outside.duration_ns;
        exercised.add_run(&results.raw);
        let verdict = results.shown_verdict();
        summary.runs_count += 1;
        match verdict {
            Verdict::Valid => summary.valid_count += 1,
            Verdict::Invalid => summary.invalid_count += 1,
            Verdict::Unknown => summary.unknown_count += 1,
        }
        rows.push(RunRow {
            dir: dir.clone(),
            title: run_title(&results, dir),
            seed: results.seed.clone(),
            verdict,
            causes: results.causes.clone(),
            ops_count: history.ops.len(),
            faults_count: faults.len(),
            duration_ns: history.end_time_ns,
            signature: (verdict != Verdict::Valid).then(|| failure_signature(&results)),
            has_page: dir.join("index.html").is_file(),
            reproduce: results
                .reproduce
                .as_deref()
                .map(|cmd| crate::run::replay_command(cmd, dir)),
            deterministic: std::fs::read_to_string(dir.join("determinism.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|d| d.get("same").and_then(Value::as_bool)),
        });
        let case_name = match &results.seed {
            Some(seed) => format!("seed {seed}"),
            None => relative_path(campaign_dir, dir),
        };
        junit_cases.push((
            rows.last().map(|r| r.seed.clone()),
            crate::exports::junit_testcase(&results, &case_name, history.ops.len()),
        ));
    }
    rows.sort_by_key(|r| {
        (
            r.seed
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(u64::MAX),
            r.dir.clone(),
        )
    });
    let page = render(
        campaign_dir,
        &rows,
        &summary,
        &latency,
        &by_fault_kind,
        &outside_all,
        &exercised,
    );
    write_atomic(&campaign_dir.join("index.html"), page.as_bytes())?;
    junit_cases.sort_by_key(|(seed, _)| {
        seed.clone()
            .flatten()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    let cases: Vec<_> = junit_cases.into_iter().map(|(_, case)| case).collect();
    write_atomic(
        &campaign_dir.join("junit.xml"),
        crate::exports::campaign_junit_xml(&campaign_name(campaign_dir), &cases).as_bytes(),
    )?;
    Ok(summary)
}

fn campaign_name(campaign_dir: &Path) -> String {
    campaign_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "campaign".into())
}

/// What the campaign ran: its command line (from campaign.json), when, the planted bugs and
/// the schedule, and whether the runs checked for determinism replayed byte for byte.
fn header_html(campaign_dir: &Path, rows: &[RunRow]) -> String {
    let mut out = String::from("<h2>What ran</h2>\n<table id=\"campaign-meta\">\n");
    let file_path = campaign_dir.join("campaign.json");
    let file: Option<Value> = std::fs::read_to_string(&file_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let row = |out: &mut String, name: &str, value_html: String| {
        out.push_str(&format!(
            "<tr><th>{}</th><td>{value_html}</td></tr>\n",
            html(name)
        ));
    };
    let options = file
        .as_ref()
        .and_then(|f| f.get("options"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let seeds: Vec<u64> = rows
        .iter()
        .filter_map(|r| r.seed.as_deref()?.parse().ok())
        .collect();
    match &options {
        Some(options) => {
            let seeds_arg = match (seeds.iter().min(), seeds.iter().max()) {
                (Some(lo), Some(hi)) => format!("--seeds {lo}..{} ", hi + 1),
                _ => String::new(),
            };
            let command = format!(
                "minos campaign {seeds_arg}{}",
                options.strip_prefix("minos run ").unwrap_or(options)
            );
            row(
                &mut out,
                "command",
                format!("<code id=\"campaign-command\">{}</code>", html(&command)),
            );
            let bugs: Vec<&str> = options
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] == "--bug")
                .map(|w| w[1])
                .collect();
            row(
                &mut out,
                "planted bug",
                if bugs.is_empty() {
                    "none (the correct build)".into()
                } else {
                    html(&bugs.join(", "))
                },
            );
        }
        None => row(
            &mut out,
            "command",
            "<span class=\"missing\">campaign.json is missing or unreadable</span>".into(),
        ),
    }
    let schedule = file
        .as_ref()
        .and_then(|f| f.get("schedule"))
        .filter(|s| !s.is_null());
    row(
        &mut out,
        "schedule",
        match schedule {
            Some(s) => {
                let text = serde_json::to_string_pretty(s).unwrap_or_default();
                let events = s
                    .as_array()
                    .or_else(|| s.get("events").and_then(Value::as_array))
                    .map(|e| e.len());
                format!(
                    "scripted, the same for every seed{} <details class=\"long\"><summary>show</summary><pre class=\"cex\">{}</pre></details>",
                    events.map(|n| format!(" ({n} events)")).unwrap_or_default(),
                    html(&truncate(&text, 50_000))
                )
            }
            None => "generated from each seed (see --nemesis in the command)".into(),
        },
    );
    let started = std::fs::metadata(&file_path)
        .and_then(|m| m.modified())
        .ok();
    row(
        &mut out,
        "date",
        format!(
            "started {}, page written {}",
            started
                .map(|t| crate::store_index::stamp_label(&crate::store_index::stamp(t)))
                .unwrap_or_else(|| "?".into()),
            crate::store_index::stamp_label(&crate::store_index::stamp(
                std::time::SystemTime::now()
            ))
        ),
    );
    let checked: Vec<&RunRow> = rows.iter().filter(|r| r.deterministic.is_some()).collect();
    let differ: Vec<String> = checked
        .iter()
        .filter(|r| r.deterministic == Some(false))
        .map(|r| r.seed.clone().unwrap_or_else(|| "?".into()))
        .collect();
    row(
        &mut out,
        "determinism",
        if checked.is_empty() {
            "<span class=\"missing\">not checked (no run was replayed twice)</span>".into()
        } else if differ.is_empty() {
            format!("<span class=\"ok\" id=\"determinism\">✓ {} seed(s) run twice gave byte-identical histories</span>", checked.len())
        } else {
            format!(
                "<span class=\"bad\" id=\"determinism\">✗ {} of {} seed(s) run twice gave different histories: seeds {}</span>",
                differ.len(),
                checked.len(),
                html(&differ.join(", "))
            )
        },
    );
    row(&mut out, "exports", "<a href=\"junit.xml\">junit.xml</a> (one test case per seed) · <a href=\"../index.html\">↑ store</a>".into());
    out.push_str("</table>\n");
    out
}

fn render(
    campaign_dir: &Path,
    rows: &[RunRow],
    summary: &CampaignSummary,
    latency: &BTreeMap<String, LogHistogram>,
    by_fault_kind: &BTreeMap<String, Availability>,
    outside: &Availability,
    exercised: &crate::effects::Exercised,
) -> String {
    let name = campaign_name(campaign_dir);
    let verdict = summary.verdict();
    let mut out = String::with_capacity(32 * 1024 + rows.len() * 300);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"minos-page\" content=\"campaign\">\n");
    out.push_str(&format!(
        "<meta name=\"minos-verdict\" content=\"{}\">\n",
        verdict.name()
    ));
    out.push_str(&format!(
        "<meta name=\"minos-runs\" content=\"{}\">\n",
        summary.runs_count
    ));
    out.push_str(&format!(
        "<title>{} — campaign {}</title>\n",
        verdict.name(),
        html(&name)
    ));
    out.push_str(STYLE);
    out.push_str("</head><body><main>\n");
    out.push_str(&format!("<h1>Campaign {}</h1>\n", html(&name)));
    out.push_str(&format!(
        "<div><span class=\"verdict\" id=\"verdict\" style=\"background:{}\">{}</span>\
         <span class=\"causes\">{} runs: <span class=\"ok\">{} valid</span>, <span class=\"bad\">{} invalid</span>, \
         <span class=\"warn\">{} unknown</span></span></div>\n",
        verdict_color(verdict),
        verdict.name(),
        summary.runs_count,
        summary.valid_count,
        summary.invalid_count,
        summary.unknown_count
    ));

    out.push_str(&header_html(campaign_dir, rows));

    // Failures grouped by signature.
    out.push_str("<h2>Failures by signature</h2>\n");
    let mut groups: BTreeMap<&str, Vec<&RunRow>> = BTreeMap::new();
    for r in rows {
        if let Some(s) = &r.signature {
            groups.entry(s.as_str()).or_default().push(r);
        }
    }
    if groups.is_empty() {
        out.push_str("<p>No failing runs.</p>\n");
    } else {
        let mut groups: Vec<(&str, Vec<&RunRow>)> = groups.into_iter().collect();
        groups.sort_by_key(|(s, runs)| (std::cmp::Reverse(runs.len()), *s));
        out.push_str("<table id=\"signatures\"><tr><th>runs</th><th>signature</th><th>seeds (first 30)</th><th>reproduce and shrink (first seed)</th></tr>\n");
        for (signature, runs) in groups {
            let seeds: Vec<String> = runs
                .iter()
                .take(30)
                .map(|r| {
                    let label = html(r.seed.as_deref().unwrap_or("?"));
                    if r.has_page {
                        let href = format!("{}/index.html", relative_path(campaign_dir, &r.dir));
                        format!(
                            "<a href=\"{}\">{label}</a>",
                            html(&crate::run_page::relative_href(&href))
                        )
                    } else {
                        label
                    }
                })
                .collect();
            let first = runs[0];
            let reproduce = first
                .reproduce
                .as_deref()
                .map(|c| format!("<code class=\"reproduce\">{}</code>", html(c)))
                .unwrap_or_else(|| {
                    "<span class=\"missing\">no reproduce command recorded</span>".into()
                });
            let shrink = format!(
                "<code class=\"shrink\">minos shrink {}</code>",
                html(&shell_word(&first.dir.display().to_string()))
            );
            out.push_str(&format!(
                "<tr><td class=\"num\">{}</td><td class=\"long\" title=\"{}\">{}</td><td>{}</td><td>{reproduce}<br>{shrink}</td></tr>\n",
                runs.len(),
                html(&truncate(signature, 20_000)),
                html(&truncate(signature, 500)),
                seeds.join(" ")
            ));
        }
        out.push_str("</table>\n");
    }

    // Aggregates.
    out.push_str("<h2>Latency over all runs (ok ops)</h2>\n");
    if latency.is_empty() {
        out.push_str("<p class=\"missing\">No completed ops.</p>\n");
    } else {
        out.push_str("<table><tr><th>f</th><th>ops</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>\n");
        for (f, h) in latency {
            let q = |p| {
                h.quantile(p)
                    .map(|ns| format!("{:.2} ms", ns as f64 / 1e6))
                    .unwrap_or_default()
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                html(f), h.count(), q(0.5), q(0.95), q(0.99), q(1.0)
            ));
        }
        out.push_str("</table>\n<p class=\"caption\">Quantiles from a logarithmic histogram (within 2%).</p>\n");
    }
    out.push_str("<h2>Availability over all runs</h2>\n<table><tr><th>while</th><th>ok</th><th>fail</th><th>info</th><th>availability (ok / completed)</th><th>ok/s</th></tr>\n");
    let row = |out: &mut String, label: String, a: &Availability| {
        out.push_str(&format!(
            "<tr><td>{label}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td></tr>\n",
            a.ok, a.fail, a.info,
            a.ok_fraction().map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "–".into()),
            a.ok_per_second()
        ));
    };
    for (kind, a) in by_fault_kind {
        let label = format!(
            "<span class=\"swatch\" style=\"background:{}\"></span>{}",
            css_color(fault_color(kind)),
            html(kind)
        );
        row(&mut out, label, a);
    }
    row(&mut out, "no fault".to_string(), outside);
    out.push_str("</table>\n");

    out.push_str(&exercised.campaign_html());

    // Every run.
    out.push_str("<h2>Runs</h2>\n<table><tr><th>seed</th><th>verdict</th><th>ops</th><th>faults</th><th>duration (s)</th><th>causes</th><th>run</th></tr>\n");
    for r in rows {
        let link = if r.has_page {
            let href = format!("{}/index.html", relative_path(campaign_dir, &r.dir));
            format!(
                "<a href=\"{}\">{}</a>",
                html(&crate::run_page::relative_href(&href)),
                html(&r.title)
            )
        } else {
            format!(
                "{} <span class=\"missing\">(no report)</span>",
                html(&r.title)
            )
        };
        out.push_str(&format!(
            "<tr><td class=\"num\">{}</td><td style=\"color:{};font-weight:600\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td>{}</td><td>{link}</td></tr>\n",
            html(r.seed.as_deref().unwrap_or("?")),
            verdict_color(r.verdict),
            r.verdict.name(),
            r.ops_count,
            r.faults_count,
            r.duration_ns as f64 / 1e9,
            crate::escape::cut_html(&r.causes.join(", "), 200),
        ));
    }
    out.push_str("</table>\n</main></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_blanks_numbers() {
        let a = RunResults::parse(
            r#"{"verdict":"invalid","causes":["linearizability"],"checker":{"verdict":"invalid","counterexample":{"stuck":[{"op":{"f":"read"},"reason":"read returned 3 but the counter is 12"}]}}}"#,
        );
        let b = RunResults::parse(
            r#"{"verdict":"invalid","causes":["linearizability"],"checker":{"verdict":"invalid","counterexample":{"stuck":[{"op":{"f":"read"},"reason":"read returned 40 but the counter is 7.5"}]}}}"#,
        );
        assert_eq!(failure_signature(&a), failure_signature(&b));
        assert_eq!(
            failure_signature(&a),
            "invalid · linearizability · read: read returned N but the counter is N"
        );
    }
}
