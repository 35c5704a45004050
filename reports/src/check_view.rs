//! `minos check FILE --html OUT`: one self-contained page of a checked history, whatever tool
//! wrote it (Minos jsonl, Jepsen/Knossos EDN, Porcupine logs). The checker's history and report
//! are turned into what the run pages already draw: the ops on per-process lanes of the
//! timeline canvas (x = history index, since not every format records times), each
//! linearized op numbered with the state after it on hover, the failing ops in red, a "jump to
//! first error" control and a key selector, and above it the counterexample section of the run
//! page. A valid history gets the same view, every op linearized.
//!
//! Bounds, so a large history still gives a usable page: at most [`VIEW_OPS_MAX`] ops are
//! embedded (beyond that, the window of that many ops around the first error, or the first
//! ones, and the page says so); value texts are cut to 160 characters (the timeline's bound) and
//! state texts to `STATE_TEXT_CHARS` (200), and distinct state texts stop being kept past
//! [`STATES_BYTES_MAX`]; the key table lists at most [`KEY_ROWS_MAX`] keys. A page is thus at
//! most about 60 MB, and typically 150-300 bytes per op.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use minos_checker::history::{self as checked, Outcome as CheckedOutcome, Output};
use minos_checker::{CheckReport, Counterexample, Verdict};
use serde_json::Value;

use crate::escape::{cut_html, html};
use crate::history::{History, Op, Outcome};
use crate::timeline::{self, Highlight, Overlay};
use crate::ReportError;

/// Most ops a page embeds.
pub const VIEW_OPS_MAX: usize = 100_000;
/// Most bytes of distinct state texts a page embeds.
pub const STATES_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most keys the key table lists (the selector above the timeline offers every key shown).
pub const KEY_ROWS_MAX: usize = 200;

/// Writes the page to `path` (atomically).
pub fn write_check_view(
    path: &Path,
    history: &checked::History,
    report: &CheckReport,
) -> Result<(), ReportError> {
    crate::atomic::write_atomic(path, check_view_html(history, report).as_bytes())
}

/// The page. `report` should come from a check with `CheckOptions::linearization` set;
/// without it the ops are drawn but none is numbered.
pub fn check_view_html(history: &checked::History, report: &CheckReport) -> String {
    let (first, last) = shown_range(history, report.counterexample.as_ref());
    let view = to_view_history(&history.ops[first..last]);
    let failing = failing_indexes(report.counterexample.as_ref());
    let overlay = overlay(&view, report);
    let counterexample_json = report
        .counterexample
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok());
    let highlight = Highlight {
        window: report
            .counterexample
            .as_ref()
            .map(|c| (c.window.first_index, c.window.last_index)),
        prefix: view
            .ops
            .iter()
            .zip(&overlay.linearized)
            .filter(|(_, place)| place.is_some())
            .map(|(op, _)| op.invoke_index)
            .collect(),
        stuck: failing.clone(),
        drawn_ns: counterexample_json
            .as_ref()
            .and_then(|c| crate::counterexample::drawn_span_ns(c, &view)),
    };

    let name = &history.source_name;
    let mut page = String::with_capacity(view.ops.len() * 200 + 40_000);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    page.push_str(&format!(
        "<title>{} — {}</title>\n",
        html(&crate::escape::truncate(name, 120)),
        report.verdict.as_str()
    ));
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(crate::run_page::STYLE);
    page.push_str("</head><body><main>\n");
    page.push_str(&format!(
        "<h1>{}</h1>\n<p><span class=\"verdict\" style=\"background:{}\">{}</span> \
         <span class=\"causes\">model <b>{}</b>, {} ops, {} object{}{}, checked in {} ms</span></p>\n",
        cut_html(name, 160),
        verdict_color(report.verdict),
        report.verdict.as_str(),
        html(&report.model),
        report.ops_count,
        report.partitions.len(),
        if report.partitions.len() == 1 { "" } else { "s" },
        if history.independent {
            " by [key value] (jepsen.independent)"
        } else {
            ""
        },
        report.elapsed_ms
    ));
    if let Some(reason) = &report.unknown_reason {
        page.push_str(&format!(
            "<p class=\"notes\">Unknown: the {} ran out. Each undecided object shows the longest \
             linearizable prefix the search reached.</p>\n",
            html(reason)
        ));
    }
    if first > 0 || last < history.ops.len() {
        page.push_str(&format!(
            "<p class=\"notes\">The history has {} ops; this page embeds ops {}–{} of them (at most {VIEW_OPS_MAX}), \
             {}.</p>\n",
            history.ops.len(),
            first + 1,
            last,
            if report.counterexample.is_some() {
                "the window around the first error"
            } else {
                "the first ones"
            }
        ));
    }
    page.push_str(&summary_html(report, &failing));
    page.push_str(&format!(
        "<section id=\"timeline\"><h2>Timeline</h2>\n<p class=\"caption\">One lane per client process; x is the \
         history index (the real-time order of the records). Outlined ops are linearized: hover one for its place in \
         its key's linearization (or longest linearizable prefix) and the model state after it; wide enough, a bar shows \
         that place. Failing ops are red. Mouse wheel or +/− zoom, drag to pan. {} ops drawn.</p>\n",
        view.ops.len()
    ));
    page.push_str(&timeline::canvas_html(
        &view,
        &[],
        Some(&highlight),
        Some(&overlay),
    ));
    page.push_str("</section>\n");
    page.push_str(&keys_html(report, &view));
    if let (Some(c), Some(json)) = (&report.counterexample, &counterexample_json) {
        page.push_str("<section id=\"counterexample\"><h2>First error</h2>\n");
        page.push_str(&format!(
            "<p class=\"lead\">{}These ops cannot all be ordered. The diagram numbers <b>1…n</b> the order the checker \
             found for the smallest failing set of ops (so its numbers differ from the timeline's, which are of the \
             whole key); after them no op can legally come next, and the op in <b class=\"bad\">red</b> cannot be placed. \
             <a href=\"#timeline\" onclick=\"document.getElementById('cex').click()\">Jump to it on the timeline ↑</a></p>\n",
            match &c.key {
                Some(key) => format!("Key <code>{}</code>. ", cut_html(key, 80)),
                None => String::new(),
            }
        ));
        page.push_str(&crate::counterexample::details_html(json, &view));
        page.push_str("</section>\n");
    }
    page.push_str("</main></body></html>\n");
    page
}

fn verdict_color(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Valid => "#2e7d32",
        Verdict::Invalid => "#c62828",
        Verdict::Unknown => "#ef8f00",
    }
}

/// The ops (positions in `history.ops`, a half-open range) the page embeds: all of them, or
/// `VIEW_OPS_MAX` around the first error (or from the start).
fn shown_range(
    history: &checked::History,
    counterexample: Option<&Counterexample>,
) -> (usize, usize) {
    let count = history.ops.len();
    if count <= VIEW_OPS_MAX {
        return (0, count);
    }
    let centre = counterexample
        .map(|c| {
            history
                .ops
                .partition_point(|op| op.index < c.window.first_index)
        })
        .unwrap_or(0);
    let first = centre
        .saturating_sub(VIEW_OPS_MAX / 2)
        .min(count - VIEW_OPS_MAX);
    (first, first + VIEW_OPS_MAX)
}

/// The checker's ops as the report pages draw them; times are history indexes (in µs units
/// of the timeline, so one index is one unit).
fn to_view_history(ops: &[checked::Operation]) -> History {
    let mut view = History::default();
    let mut end = 0;
    for op in ops {
        let (outcome, result) = match (&op.outcome, op.completion_index) {
            (CheckedOutcome::Ok(Output::Known(value)), _) => (Outcome::Ok, value.clone()),
            (CheckedOutcome::Ok(Output::Unknown), _) => {
                (Outcome::Ok, op.completion_value().clone())
            }
            (CheckedOutcome::Fail, _) => (Outcome::Fail, op.completion_value().clone()),
            (CheckedOutcome::Info, Some(_)) => (Outcome::Info, op.completion_value().clone()),
            (CheckedOutcome::Info, None) => (Outcome::Pending, Value::Null),
        };
        end = end.max(op.completion_index.unwrap_or(op.index));
        view.ops.push(Op {
            process: op.process,
            f: op.f.to_string(),
            key: op.key.as_ref().map(|key| key.to_string()),
            invoke_index: op.index,
            invoke_time_ns: op.index * 1000,
            complete_index: op.completion_index,
            complete_time_ns: op.completion_index.map(|index| index * 1000),
            outcome,
            invoke_value: op.invoke_value.clone(),
            result,
        });
    }
    // Ops that never completed reach one index past the last record.
    view.end_time_ns = (end + 1) * 1000;
    view.records_count = view.ops.len() as u64;
    view.times_are_indexes = true;
    view
}

/// History indexes (of invokes) of the ops the first error shows as failing: the smallest set
/// of ops that cannot be ordered, the ops that cannot come next, and the op whose completion
/// cannot be reached.
fn failing_indexes(counterexample: Option<&Counterexample>) -> BTreeSet<u64> {
    let Some(c) = counterexample else {
        return BTreeSet::new();
    };
    c.core
        .iter()
        .chain(c.stuck.iter().map(|stuck| &stuck.op))
        .chain(c.blocked.iter())
        .map(|op| op.index)
        .collect()
}

/// Each embedded op's place in its object's linearization and the state after it.
fn overlay(view: &History, report: &CheckReport) -> Overlay {
    let position: BTreeMap<u64, usize> = view
        .ops
        .iter()
        .enumerate()
        .map(|(position, op)| (op.invoke_index, position))
        .collect();
    let mut linearized = vec![None; view.ops.len()];
    let mut states = Vec::new();
    let mut state_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut states_bytes = 0usize;
    for partition in &report.partitions {
        let Some(order) = &partition.linearization else {
            continue;
        };
        for (place, step) in order.steps.iter().enumerate() {
            let Some(&at) = position.get(&step.index) else {
                continue;
            };
            let state = match state_ids.get(step.state.as_str()) {
                Some(&id) => id,
                None if states_bytes + step.state.len() <= STATES_BYTES_MAX => {
                    states_bytes += step.state.len();
                    states.push(step.state.clone());
                    state_ids.insert(&step.state, states.len() - 1);
                    states.len() - 1
                }
                None => {
                    if state_ids.len() == states.len() {
                        states.push(
                            "(not kept: the page's bound on state texts was reached)".to_string(),
                        );
                    }
                    states.len() - 1
                }
            };
            linearized[at] = Some((place as u64 + 1, state));
        }
    }
    Overlay {
        linearized,
        states,
        error_key: report.counterexample.as_ref().and_then(|c| c.key.clone()),
        index_axis: true,
    }
}

/// Counts per verdict, and the failing ops by index (the ids the timeline marks).
fn summary_html(report: &CheckReport, failing: &BTreeSet<u64>) -> String {
    let count = |verdict: Verdict| {
        report
            .partitions
            .iter()
            .filter(|p| p.verdict == verdict)
            .count()
    };
    let linearized: usize = report
        .partitions
        .iter()
        .filter_map(|p| p.linearization.as_ref())
        .map(|order| order.steps.len())
        .sum();
    let mut out = format!(
        "<p>Objects: <span class=\"ok\">{} valid</span>, <span class=\"bad\">{} invalid</span>, \
         <span class=\"warn\">{} unknown</span>. Ops linearized: {linearized}.</p>\n",
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown)
    );
    if !failing.is_empty() {
        out.push_str("<p id=\"failing-ops\">Failing ops (history index of the invoke): ");
        let ids: Vec<String> = failing
            .iter()
            .map(|index| {
                format!("<code class=\"bad failing-op\" data-index=\"{index}\">#{index}</code>")
            })
            .collect();
        out.push_str(&ids.join(", "));
        out.push_str("</p>\n");
    }
    out
}

/// A table of keys (objects), failures first, each linking to its lanes on the timeline.
fn keys_html(report: &CheckReport, view: &History) -> String {
    let keys: Vec<&str> = view
        .ops
        .iter()
        .filter_map(|op| op.key.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if keys.len() < 2 {
        return String::new();
    }
    let rank = |verdict: Verdict| match verdict {
        Verdict::Invalid => 0,
        Verdict::Unknown => 1,
        Verdict::Valid => 2,
    };
    let mut rows: Vec<_> = report.partitions.iter().collect();
    rows.sort_by_key(|p| rank(p.verdict));
    let mut out = format!(
        "<section id=\"keys\"><h2>Keys</h2>\n<p class=\"caption\">{} keys, checked one by one. A key's link shows only its ops on the timeline.{}</p>\n\
         <table><tr><th>key</th><th>verdict</th><th>ops checked</th><th>linearized</th><th>note</th></tr>\n",
        report.partitions.len(),
        if rows.len() > KEY_ROWS_MAX {
            format!(" The first {KEY_ROWS_MAX} are listed, failures first; the selector above the timeline has every key.")
        } else {
            String::new()
        }
    );
    for p in rows.iter().take(KEY_ROWS_MAX) {
        let name = p.key.as_deref().unwrap_or("(none)");
        let cell = match p
            .key
            .as_deref()
            .and_then(|key| keys.binary_search(&key).ok())
        {
            Some(at) => format!(
                "<a href=\"#key={at}\"><code>{}</code></a>",
                cut_html(name, 80)
            ),
            None => format!("<code>{}</code>", cut_html(name, 80)),
        };
        let linearized = match &p.linearization {
            Some(order) if order.complete => format!("all {}", order.steps.len()),
            Some(order) => format!("{} (prefix)", order.steps.len()),
            None => "—".to_string(),
        };
        out.push_str(&format!(
            "<tr><td class=\"long\">{cell}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td>{linearized}</td><td>{}</td></tr>\n",
            match p.verdict {
                Verdict::Valid => "ok",
                Verdict::Invalid => "bad",
                Verdict::Unknown => "warn",
            },
            p.verdict.as_str(),
            p.ops_count,
            html(p.note.as_deref().unwrap_or(""))
        ));
    }
    out.push_str("</table>\n</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minos_checker::{OpSummary, Window};

    fn history(count: usize) -> checked::History {
        let ops = (0..count as u64)
            .map(|i| checked::Operation {
                index: 2 * i,
                completion_index: Some(2 * i + 1),
                process: i % 4,
                process_name: None,
                f: "write".into(),
                key: None,
                invoke_value: Value::from(i),
                outcome: CheckedOutcome::Ok(Output::Unknown),
                completion_value: Some(Box::new(Value::from(i))),
                line: 0,
            })
            .collect();
        checked::History {
            source_name: "h".to_string(),
            ops,
            ..checked::History::default()
        }
    }

    fn counterexample_at(index: u64) -> Counterexample {
        let op = OpSummary::from_operation(&history(1).ops[0]);
        Counterexample {
            key: None,
            core: Vec::new(),
            linearized_prefix: Vec::new(),
            linearized_prefix_omitted: 0,
            state: Value::Null,
            stuck: Vec::new(),
            blocked: Some(op),
            never_legal: None,
            window: Window {
                first_index: index,
                last_index: index + 1,
            },
            notes: Vec::new(),
            text: String::new(),
        }
    }

    #[test]
    fn a_large_history_is_cut_to_a_window_around_the_first_error() {
        let small = history(10);
        assert_eq!(shown_range(&small, None), (0, 10));
        let large = history(VIEW_OPS_MAX + 1000);
        assert_eq!(shown_range(&large, None), (0, VIEW_OPS_MAX));
        // The error at op 80,000 (index 160,000): the window is centred on it.
        let (first, last) = shown_range(&large, Some(&counterexample_at(160_000)));
        assert_eq!(last - first, VIEW_OPS_MAX);
        assert!(first <= 80_000 && 80_000 < last);
        assert_eq!(last, VIEW_OPS_MAX + 1000, "kept whole at the end");
        let (first, _) = shown_range(&large, Some(&counterexample_at(20_000)));
        assert_eq!(first, 0);
    }

    #[test]
    fn ops_that_never_completed_run_to_the_end() {
        let mut h = history(3);
        h.ops[1].completion_index = None;
        h.ops[1].outcome = CheckedOutcome::Info;
        let view = to_view_history(&h.ops);
        assert_eq!(view.ops[1].outcome, Outcome::Pending);
        assert_eq!(
            view.end_time_ns, 6000,
            "one index past the last record (#5)"
        );
        assert!(view.times_are_indexes);
    }
}
