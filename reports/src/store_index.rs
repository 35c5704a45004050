//! `store/index.html`: the campaigns and runs in a store, newest first, with their verdicts.
//! Reads only results.json of each run (not histories), so it stays quick on large stores.

use std::path::Path;
use std::time::SystemTime;

use crate::atomic::write_atomic;
use crate::discover::{campaign_dirs, page_kind, relative_path, run_dirs, run_mtime};
use crate::escape::{html, truncate};
use crate::results::{RunResults, Verdict};
use crate::run::{load_results, run_title};
use crate::run_page::{relative_href, verdict_color, STYLE};
use crate::ReportError;

/// Most runs listed on the page; the rest are counted.
const RUNS_LISTED_MAX: usize = 5000;

fn verdict_from_meta(page: &Path) -> Option<Verdict> {
    let text = std::fs::read_to_string(page).ok()?;
    let head = &text[..text.len().min(2000)];
    let start = head.find("<meta name=\"minos-verdict\" content=\"")? + 36;
    let end = head[start..].find('"')? + start;
    Verdict::parse(&head[start..end])
}

/// "YYYYMMDDTHHMMSS" (UTC) of a time: the sort key of runs, comparable with run ids.
pub(crate) fn stamp(t: SystemTime) -> String {
    let Ok(d) = t.duration_since(SystemTime::UNIX_EPOCH) else {
        return "00000000T000000".to_string();
    };
    // UTC calendar date from days since the epoch (civil-from-days).
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let (h, m, sec) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{sec:02}")
}

/// The run id's leading timestamp ("20261122T153000-seed42"), when it has one.
fn stamp_of_run_id(run_id: &str) -> Option<String> {
    let head = run_id.get(..15)?;
    let ok = head
        .char_indices()
        .all(|(i, c)| if i == 8 { c == 'T' } else { c.is_ascii_digit() });
    ok.then(|| head.to_string())
}

/// "2026-11-22 15:30 UTC" from a stamp.
pub(crate) fn stamp_label(stamp: &str) -> String {
    if stamp.len() < 13 {
        return stamp.to_string();
    }
    format!(
        "{}-{}-{} {}:{}:{} UTC",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        stamp.get(13..15).unwrap_or("00")
    )
}

fn age_label(t: SystemTime) -> String {
    stamp_label(&stamp(t))
}

struct RunEntry {
    stamp: String,
    dir: std::path::PathBuf,
    title: String,
    seed: Option<String>,
    verdict: Verdict,
    ops_count: Option<u64>,
    causes: Vec<String>,
}

/// Writes `<store_dir>/index.html`.
pub fn write_store_index(store_dir: &Path) -> Result<(), ReportError> {
    if !store_dir.is_dir() {
        return Err(ReportError::io(
            store_dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    // Newest first by the run id's timestamp, else by when its history was written.
    let mut runs: Vec<RunEntry> = Vec::new();
    for dir in run_dirs(store_dir).into_iter().filter(|d| d != store_dir) {
        let results = load_results(&dir)?
            .unwrap_or_else(|| RunResults::empty_because("results.json is missing"));
        let stamp = results
            .run_id
            .as_deref()
            .and_then(stamp_of_run_id)
            .unwrap_or_else(|| stamp(run_mtime(&dir)));
        runs.push(RunEntry {
            stamp,
            title: run_title(&results, &dir),
            seed: results.seed.clone(),
            verdict: results.shown_verdict(),
            ops_count: results.ops_count,
            causes: results.causes.clone(),
            dir,
        });
    }
    runs.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| b.dir.cmp(&a.dir)));
    let mut campaigns: Vec<(SystemTime, std::path::PathBuf)> = campaign_dirs(store_dir)
        .into_iter()
        .filter(|d| d != store_dir)
        .map(|d| {
            let t = std::fs::metadata(d.join("index.html"))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (t, d)
        })
        .collect();
    campaigns.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));

    let mut out = String::with_capacity(16 * 1024 + runs.len().min(RUNS_LISTED_MAX) * 300);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"minos-page\" content=\"store\">\n<title>Minos store</title>\n");
    out.push_str(STYLE);
    out.push_str("</head><body><main>\n<h1>Minos store</h1>\n");
    out.push_str(&format!(
        "<p>{} campaigns, {} runs, newest first.</p>\n",
        campaigns.len(),
        runs.len()
    ));
    // Runs of a campaign are counted on its row (its page lists them); the runs table holds
    // the runs outside every campaign, so that a 300-seed campaign is one line.
    let campaign_of = |run: &RunEntry| campaigns.iter().position(|(_, c)| run.dir.starts_with(c));
    let mut counts = vec![[0usize; 3]; campaigns.len()];
    for run in &runs {
        if let Some(i) = campaign_of(run) {
            counts[i][match run.verdict {
                Verdict::Valid => 0,
                Verdict::Invalid => 1,
                Verdict::Unknown => 2,
            }] += 1;
        }
    }
    let loose: Vec<&RunEntry> = runs.iter().filter(|r| campaign_of(r).is_none()).collect();
    out.push_str(
        "<p><label><input type=\"checkbox\" id=\"failures-only\"> failures only</label> \
         <span class=\"caption\">(hides valid campaigns and runs)</span></p>\n",
    );
    out.push_str("<h2>Campaigns</h2>\n");
    if campaigns.is_empty() {
        out.push_str("<p>No campaigns.</p>\n");
    } else {
        out.push_str("<table id=\"campaigns\"><tr><th>when (page written)</th><th>campaign</th><th>verdict</th><th>runs</th><th>valid</th><th>invalid</th><th>unknown</th></tr>\n");
        for ((t, dir), [valid, invalid, unknown]) in campaigns.iter().zip(&counts) {
            let has_page = page_kind(&dir.join("index.html")).as_deref() == Some("campaign");
            let verdict = verdict_from_meta(&dir.join("index.html"));
            let name = relative_path(store_dir, dir);
            let link = if has_page {
                format!(
                    "<a href=\"{}\">{}</a>",
                    html(&relative_href(&format!("{name}/index.html"))),
                    html(&name)
                )
            } else {
                format!(
                    "{} <span class=\"missing\">(no page yet)</span>",
                    html(&name)
                )
            };
            let failing = *invalid + *unknown > 0 || verdict.is_some_and(|v| v != Verdict::Valid);
            out.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td class=\"long\">{link}</td>{}<td class=\"num\">{}</td><td class=\"num\">{valid}</td><td class=\"num\">{invalid}</td><td class=\"num\">{unknown}</td></tr>\n",
                if failing { "failing" } else { "passing" },
                age_label(*t),
                verdict_cell(verdict),
                valid + invalid + unknown
            ));
        }
        out.push_str("</table>\n");
    }
    quorum_tables_html(store_dir, &mut out);
    out.push_str("<h2>Runs outside campaigns</h2>\n");
    if loose.is_empty() {
        out.push_str("<p>No runs outside campaigns.</p>\n");
    } else {
        out.push_str("<table id=\"runs\"><tr><th>when</th><th>run</th><th>seed</th><th>verdict</th><th>ops</th><th>causes</th></tr>\n");
        for run in loose.iter().take(RUNS_LISTED_MAX) {
            let rel = relative_path(store_dir, &run.dir);
            let title = format!("{rel} ({})", run.title);
            let link = if run.dir.join("index.html").is_file() {
                format!(
                    "<a href=\"{}\">{}</a>",
                    html(&relative_href(&format!("{rel}/index.html"))),
                    html(&title)
                )
            } else {
                format!(
                    "{} <span class=\"missing\">(no report)</span>",
                    html(&title)
                )
            };
            let causes = run.causes.join(", ");
            out.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td class=\"long\">{link}</td><td class=\"num\">{}</td>{}<td class=\"num\">{}</td><td class=\"long\" title=\"{}\">{}</td></tr>\n",
                if run.verdict == Verdict::Valid { "passing" } else { "failing" },
                html(&stamp_label(&run.stamp)),
                html(run.seed.as_deref().unwrap_or("?")),
                verdict_cell(Some(run.verdict)),
                run.ops_count.map(|n| n.to_string()).unwrap_or_default(),
                html(&truncate(&causes, 20_000)),
                html(&truncate(&causes, 200))
            ));
        }
        if loose.len() > RUNS_LISTED_MAX {
            out.push_str(&format!(
                "<tr><td colspan=\"6\">… and {} older runs not listed</td></tr>\n",
                loose.len() - RUNS_LISTED_MAX
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str(FILTER_SCRIPT);
    out.push_str("</main></body></html>\n");
    write_atomic(&store_dir.join("index.html"), out.as_bytes())
}

/// The tables `minos quorum` wrote into the store (`quorum-<system>/`), when there are any.
fn quorum_tables_html(store_dir: &Path, out: &mut String) {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(store_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with("quorum-"))
                        && path.join("quorum.json").is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    if dirs.is_empty() {
        return;
    }
    dirs.sort();
    out.push_str("<h2>Quorum tables</h2>\n<table id=\"quorum-tables\"><tr><th>when</th><th>system</th><th>version</th><th>cluster sizes</th><th>majority quorums</th></tr>\n");
    for dir in dirs {
        let Some(report) = crate::quorum_page::load_quorum(&dir) else {
            continue;
        };
        let summary = crate::quorum_page::summary(&report);
        let name = relative_path(store_dir, &dir);
        let link = if dir.join("index.html").is_file() {
            format!(
                "<a href=\"{}\">{}</a>",
                html(&relative_href(&format!("{name}/index.html"))),
                html(&truncate(&summary.system, 100))
            )
        } else {
            format!(
                "{} <span class=\"missing\">(no page yet)</span>",
                html(&truncate(&summary.system, 100))
            )
        };
        let when = std::fs::metadata(dir.join("quorum.json"))
            .and_then(|meta| meta.modified())
            .map(age_label)
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{link}</td><td class=\"long\">{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td></tr>\n",
            if summary.matches_majority { "passing" } else { "failing" },
            html(&when),
            html(&truncate(&summary.version, 200)),
            summary.rows,
            if summary.matches_majority { "ok" } else { "bad" },
            if summary.matches_majority { "as predicted" } else { "differs" }
        ));
    }
    out.push_str("</table>\n");
}

/// The failures-only switch: hides the rows of valid campaigns and runs.
const FILTER_SCRIPT: &str = "<script>\n'use strict';\nconst only = document.getElementById('failures-only');\nonly.addEventListener('change', () => {\n  for (const row of document.querySelectorAll('tr.passing')) row.style.display = only.checked ? 'none' : '';\n});\n</script>\n";

fn verdict_cell(v: Option<Verdict>) -> String {
    match v {
        Some(v) => format!(
            "<td style=\"color:{};font-weight:600\">{}</td>",
            verdict_color(v),
            v.name()
        ),
        None => "<td>?</td>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_305_600 + 3661);
        assert_eq!(age_label(t), "2026-11-22 01:01:01 UTC");
        assert_eq!(stamp(t), "20261122T010101");
        assert_eq!(
            stamp_of_run_id("20261122T153000-seed42").as_deref(),
            Some("20261122T153000")
        );
        assert_eq!(stamp_of_run_id("seed-42"), None);
    }

    #[test]
    fn quorum_tables_in_the_store_are_listed_and_linked() {
        let store = std::env::temp_dir().join(format!("minos-store-quorum-{}", std::process::id()));
        let dir = store.join("quorum-minos-node");
        std::fs::create_dir_all(&dir).unwrap();
        let report = serde_json::json!({"system": "minos-node", "version": "minos 0.1", "rows": [
            {"servers": 3, "quorum": 2, "tolerated": 1, "expected_quorum": 2, "expected_tolerated": 1, "steps": []}
        ]});
        std::fs::write(dir.join("quorum.json"), report.to_string()).unwrap();
        crate::quorum_page::write_quorum_page(&dir, Some("../index.html")).unwrap();
        write_store_index(&store).unwrap();
        let page = std::fs::read_to_string(store.join("index.html")).unwrap();
        std::fs::remove_dir_all(&store).unwrap();
        assert!(page.contains("<h2>Quorum tables</h2>"), "{page}");
        assert!(page.contains("quorum-minos-node/index.html"), "{page}");
        assert!(page.contains("as predicted"), "{page}");
    }
}
