//! The "Why invalid" box at the top of a run page: every cause of the verdict with the detail
//! results.json holds for it (the invariant's detail, the stall, the liveness detail, a node's
//! panic message, the checker's first reason), so that a reader sees the failure before any
//! table.

use serde_json::Value;

use crate::escape::{html, truncate};
use crate::history::value_text;
use crate::results::{RunResults, Verdict};

/// Longest detail shown per cause; the whole text stays in a `title` and in results.json.
const DETAIL_CHARS_MAX: usize = 600;

/// One cause and what results.json says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub cause: String,
    pub detail: Option<String>,
}

fn non_empty_text(value: Option<&Value>) -> Option<String> {
    value
        .filter(|v| !v.is_null())
        .map(value_text)
        .filter(|t| !t.trim().is_empty())
}

/// The causes of a run's verdict, each with its detail when results.json has one.
pub fn reasons(results: &RunResults) -> Vec<Reason> {
    let raw = &results.raw;
    let mut out = Vec::new();
    for cause in &results.causes {
        let detail = if cause == "linearizability" {
            linearizability_detail(results)
        } else if let Some(name) = cause.strip_prefix("invariant: ") {
            results.invariants.as_ref().and_then(|list| {
                list.iter()
                    .find(|inv| inv.get("name").map(value_text).as_deref() == Some(name))
                    .and_then(|inv| non_empty_text(inv.get("detail")))
            })
        } else if cause == "no progress" {
            non_empty_text(raw.pointer("/liveness/detail"))
        } else if cause == "no progress during faults" {
            non_empty_text(raw.pointer("/stall/detail"))
        } else {
            // Node panics and replica divergences carry their detail in the cause itself.
            None
        };
        out.push(Reason {
            cause: cause.clone(),
            detail,
        });
    }
    if out.is_empty() && results.shown_verdict() == Verdict::Invalid {
        if let Some(detail) = linearizability_detail(results) {
            out.push(Reason {
                cause: "linearizability".into(),
                detail: Some(detail),
            });
        }
    }
    out
}

/// "key k1: read returned 3 but the counter is 12" from the counterexample's first candidate.
fn linearizability_detail(results: &RunResults) -> Option<String> {
    let c = results.counterexample()?;
    let reason = c
        .get("stuck")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(|s| non_empty_text(s.get("reason")))?;
    Some(match non_empty_text(c.get("key")) {
        Some(key) => format!("key {key}: {reason}"),
        None => reason,
    })
}

/// The box, or nothing for a run that is not invalid.
pub fn why_invalid_html(results: &RunResults, faults_note: Option<&str>) -> String {
    if results.shown_verdict() != Verdict::Invalid {
        return String::new();
    }
    let reasons = reasons(results);
    let mut out =
        String::from("<section id=\"why-invalid\" class=\"why\"><h2>Why invalid</h2>\n<ul>\n");
    if reasons.is_empty() {
        out.push_str("<li>results.json records no cause for the invalid verdict.</li>\n");
    }
    for reason in &reasons {
        out.push_str(&format!(
            "<li><b>{}</b>",
            html(&truncate(&reason.cause, DETAIL_CHARS_MAX))
        ));
        if let Some(detail) = &reason.detail {
            out.push_str(&format!(
                ": <span class=\"detail\" title=\"{}\">{}</span>",
                html(&truncate(detail, 20_000)),
                html(&truncate(detail, DETAIL_CHARS_MAX))
            ));
        }
        if reason.cause == "linearizability" && results.counterexample().is_some() {
            out.push_str(" <a href=\"#counterexample\">counterexample below ↓</a>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    if let Some(note) = faults_note {
        out.push_str(note);
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_gets_its_detail() {
        let r = RunResults::parse(
            r#"{"verdict":"invalid","causes":["invariant: one leader per term","no progress during faults","node n3 panicked: boom at src/x.rs:3","linearizability"],
               "invariants":[{"name":"one leader per term","ok":false,"detail":"n3 and n2 were both leader in term 20"}],
               "stall":{"detail":"no operation completed for 5.0 s during partition-oneway (limit 3.0 s)"},
               "checker":{"verdict":"invalid","counterexample":{"key":"k1","stuck":[{"reason":"read returned 3 but the counter is 12"}]}}}"#,
        );
        let page = why_invalid_html(&r, None);
        assert!(
            page.contains("n3 and n2 were both leader in term 20"),
            "{page}"
        );
        assert!(page.contains("no operation completed for 5.0 s during partition-oneway"));
        assert!(page.contains("node n3 panicked: boom at src/x.rs:3"));
        assert!(page.contains("key k1: read returned 3 but the counter is 12"));
        let valid = RunResults::parse(r#"{"verdict":"valid"}"#);
        assert!(why_invalid_html(&valid, None).is_empty());
    }
}
