//! `quorum-<system>/index.html`: the measured quorum table of `minos quorum` (servers,
//! measured quorum and failures tolerated beside the majority prediction, and every kill
//! with the write that followed it). Reads only quorum.json, which is untrusted: every field
//! is optional, every string escaped, and the rows are bounded.

use std::path::Path;

use serde_json::Value;

use crate::atomic::write_atomic;
use crate::escape::{html, truncate};
use crate::results::Verdict;
use crate::run_page::{relative_href, verdict_color, STYLE};
use crate::ReportError;

/// quorum.json larger than this is not a table `minos quorum` wrote.
const QUORUM_JSON_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Rows (cluster sizes) and kill steps per row shown; `minos quorum` writes at most 7 each.
const ROWS_MAX: usize = 64;
const STEPS_MAX: usize = 64;

/// What the store index shows of one quorum table.
pub struct QuorumSummary {
    pub system: String,
    pub version: String,
    /// Every measured row agrees with majority quorums.
    pub matches_majority: bool,
    pub rows: usize,
}

/// Reads `<dir>/quorum.json`; None when it is missing or not a quorum table.
pub fn load_quorum(dir: &Path) -> Option<Value> {
    let path = dir.join("quorum.json");
    let size = std::fs::metadata(&path).ok()?.len();
    if size > QUORUM_JSON_MAX_BYTES {
        return None;
    }
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    value.get("rows")?.as_array()?;
    Some(value)
}

fn text_of(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn rows(report: &Value) -> &[Value] {
    report
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| &rows[..rows.len().min(ROWS_MAX)])
        .unwrap_or(&[])
}

fn row_matches(row: &Value) -> bool {
    let quorum = row.get("quorum").and_then(Value::as_u64);
    quorum.is_some() && quorum == row.get("expected_quorum").and_then(Value::as_u64)
}

pub fn summary(report: &Value) -> QuorumSummary {
    let rows = rows(report);
    QuorumSummary {
        system: text_of(report, "system"),
        version: text_of(report, "version"),
        matches_majority: !rows.is_empty() && rows.iter().all(row_matches),
        rows: rows.len(),
    }
}

fn number_cell(row: &Value, key: &str) -> String {
    match row.get(key).and_then(Value::as_u64) {
        Some(n) => format!("<td class=\"num\">{n}</td>"),
        None => "<td class=\"missing\">?</td>".to_string(),
    }
}

/// The page of one quorum table; `store_href` links back up to the store index.
pub fn render(report: &Value, store_href: Option<&str>) -> String {
    let summary = summary(report);
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"minos-page\" content=\"quorum\">\n");
    out.push_str(&format!(
        "<title>Quorum table: {}</title>\n",
        html(&truncate(&summary.system, 100))
    ));
    out.push_str(STYLE);
    out.push_str("</head><body><main>\n");
    if let Some(href) = store_href {
        out.push_str(&format!(
            "<p class=\"caption\"><a href=\"{}\">store</a></p>\n",
            html(&relative_href(href))
        ));
    }
    out.push_str(&format!(
        "<h1>Quorum table: {}</h1>\n",
        html(&truncate(&summary.system, 100))
    ));
    let (verdict, label) = if summary.matches_majority {
        (Verdict::Valid, "majority quorums, as predicted")
    } else {
        (Verdict::Invalid, "departs from majority quorums")
    };
    out.push_str(&format!(
        "<p><span class=\"verdict\" style=\"background:{}\">{}</span><span class=\"causes\">{label}</span></p>\n",
        verdict_color(verdict),
        if summary.matches_majority { "as predicted" } else { "differs" }
    ));
    let bit_exact = report.get("bit_exact").and_then(Value::as_bool);
    out.push_str("<table>\n");
    for (name, value) in [
        ("system", summary.system.clone()),
        ("version", summary.version.clone()),
        (
            "write timeout after each kill",
            format!("{} ms", text_of(report, "write_timeout_ms")),
        ),
        ("seed", text_of(report, "seed")),
        (
            "replay",
            match bit_exact {
                Some(true) => "bit-exact from the seed (simulated)".to_string(),
                Some(false) => "not bit-exact: real processes in real time".to_string(),
                None => "?".to_string(),
            },
        ),
    ] {
        out.push_str(&format!(
            "<tr><th>{}</th><td class=\"long\">{}</td></tr>\n",
            html(name),
            html(&truncate(&value, 500))
        ));
    }
    out.push_str("</table>\n");
    out.push_str(
        "<p class=\"lead\">For each cluster size a cluster is started, a first write committed, then \
         servers are killed one at a time (the current leader first, so every step also needs a new \
         election) and one write is tried after each kill. The kills before the first write that did \
         not commit are the measured failures tolerated; servers minus that is the measured quorum.</p>\n",
    );
    out.push_str("<h2>Table</h2>\n<table id=\"quorum\"><tr><th>servers</th><th>quorum (measured)</th><th>failures tolerated (measured)</th><th>majority prediction (quorum / tolerated)</th><th></th></tr>\n");
    for row in rows(report) {
        let matches = row_matches(row);
        out.push_str(&format!(
            "<tr>{}{}{}<td class=\"num\">{} / {}</td><td class=\"{}\">{}</td></tr>\n",
            number_cell(row, "servers"),
            number_cell(row, "quorum"),
            number_cell(row, "tolerated"),
            html(&text_of(row, "expected_quorum")),
            html(&text_of(row, "expected_tolerated")),
            if matches { "ok" } else { "bad" },
            if matches { "as predicted" } else { "differs" }
        ));
    }
    out.push_str("</table>\n<h2>Kills and writes</h2>\n");
    for row in rows(report) {
        let steps: &[Value] = row
            .get("steps")
            .and_then(Value::as_array)
            .map(|steps| &steps[..steps.len().min(STEPS_MAX)])
            .unwrap_or(&[]);
        out.push_str(&format!(
            "<h3>{} servers</h3>\n",
            html(&text_of(row, "servers"))
        ));
        if steps.is_empty() {
            out.push_str("<p class=\"missing\">no kill steps recorded</p>\n");
            continue;
        }
        out.push_str("<table><tr><th>step</th><th>killed</th><th>live after</th><th>write</th><th>write time</th><th>problem</th></tr>\n");
        for (position, step) in steps.iter().enumerate() {
            let committed = step.get("committed").and_then(Value::as_bool);
            let (class, word) = match committed {
                Some(true) => ("ok", "committed"),
                Some(false) => ("bad", "not committed"),
                None => ("missing", "?"),
            };
            out.push_str(&format!(
                "<tr><td class=\"num\">{}</td><td>{}</td>{}<td class=\"{class}\">{word}</td><td class=\"num\">{} ms</td><td class=\"long\">{}</td></tr>\n",
                position + 1,
                html(&truncate(&text_of(step, "killed"), 100)),
                number_cell(step, "live"),
                html(&text_of(step, "write_ms")),
                html(&truncate(&text_of(step, "problem"), 500))
            ));
        }
        out.push_str("</table>\n");
    }
    out.push_str("<p class=\"caption\">Raw: <a href=\"quorum.json\">quorum.json</a>, <a href=\"quorum.txt\">quorum.txt</a></p>\n");
    out.push_str("</main></body></html>\n");
    out
}

/// Writes `<dir>/index.html` from `<dir>/quorum.json`; `store_href` (relative to `dir`) links
/// back to the store index.
pub fn write_quorum_page(dir: &Path, store_href: Option<&str>) -> Result<(), ReportError> {
    let report = load_quorum(dir).ok_or_else(|| {
        ReportError::io(
            &dir.join("quorum.json"),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "missing, too large or not a quorum table",
            ),
        )
    })?;
    write_atomic(
        &dir.join("index.html"),
        render(&report, store_href).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(quorum_of_5: u64) -> Value {
        json!({
            "system": "minos-node <script>",
            "version": "minos 0.1",
            "write_timeout_ms": 5000,
            "bit_exact": false,
            "seed": 1,
            "rows": [
                {"servers": 3, "tolerated": 1, "quorum": 2, "expected_quorum": 2, "expected_tolerated": 1,
                 "steps": [
                    {"killed": "n1", "live": 2, "committed": true, "write_ms": 310, "problem": null},
                    {"killed": "n2", "live": 1, "committed": false, "write_ms": 5000, "problem": "op timed out"}
                 ]},
                {"servers": 5, "tolerated": 5 - quorum_of_5, "quorum": quorum_of_5, "expected_quorum": 3, "expected_tolerated": 2, "steps": []}
            ]
        })
    }

    #[test]
    fn the_page_shows_rows_steps_and_escapes() {
        let page = render(&report(3), Some("../index.html"));
        assert!(page.contains("<meta name=\"minos-page\" content=\"quorum\">"));
        assert!(page.contains("minos-node &lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("not bit-exact"));
        assert!(page.contains("not committed"));
        assert!(page.contains("op timed out"));
        assert!(page.contains("../index.html\">store</a>"));
        assert!(summary(&report(3)).matches_majority);
        assert!(page.contains("as predicted"));
    }

    #[test]
    fn a_row_off_majority_is_marked() {
        let page = render(&report(2), None);
        assert!(!summary(&report(2)).matches_majority);
        assert!(page.contains("differs"));
    }

    #[test]
    fn garbage_renders_without_panicking() {
        for value in [
            json!(null),
            json!({"rows": "x"}),
            json!({"rows": [1, {"steps": 3}]}),
        ] {
            let page = render(&value, None);
            assert!(page.contains("Quorum table"));
            assert!(!summary(&value).matches_majority);
        }
    }
}
