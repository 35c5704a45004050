//! Re-running the linearizability checker on a stored history (`minos report` after a checker
//! fix) and folding its report back into results.json: the `checker` field is replaced and the
//! overall `verdict` and `causes` recomputed, keeping every other cause (invariants, liveness).
//! The history is read once: the verdict, results.json's `history` (SHA-256, op count) and
//! every report file are made from those same bytes. A history that cannot be read or that
//! the checker refuses makes the run unknown: no stored verdict stands on input not read.

use std::path::Path;

use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::ordered_json::OrderedJson;
use crate::results::Verdict;
use crate::ReportError;

/// What happened to a run's verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum Recheck {
    /// The stored verdict is kept, with the reason.
    Kept(String),
    /// The checker ran; results.json was updated.
    Rechecked {
        before: Option<Verdict>,
        after: Verdict,
    },
    /// The history could not be read, or the checker refused it: the run is now unknown
    /// (results.json says why).
    Refused(String),
}

impl Recheck {
    pub fn note(&self) -> String {
        match self {
            Recheck::Kept(why) => format!("Verdict as stored by the run, not re-checked: {why}."),
            Recheck::Rechecked { before, after } => match before {
                Some(b) if b == after => format!(
                    "Re-checked from the stored history: still {}.",
                    after.name()
                ),
                Some(b) => format!(
                    "Re-checked from the stored history: was {}, now {}.",
                    b.name(),
                    after.name()
                ),
                None => format!("Re-checked from the stored history: {}.", after.name()),
            },
            Recheck::Refused(why) => {
                format!("The stored history cannot be checked, so the verdict is unknown: {why}.")
            }
        }
    }
}

/// The checker model for a run: by the workload recorded in the options, else the stored
/// checker report's model. The mixed workload checks two key sets with two models, a split
/// only the workloads crate knows, so it is not re-checked here.
fn model_of(results: &Value) -> Result<String, String> {
    let workload = results
        .get("options")
        .and_then(|o| o.get("workload"))
        .and_then(Value::as_str);
    let stored = results
        .get("checker")
        .and_then(|c| c.get("model"))
        .and_then(Value::as_str);
    let model = workload
        .or(stored)
        .ok_or("results.json names no workload or model")?;
    match model {
        "counter" | "register" | "cas-register" => Ok(model.to_string()),
        "mixed" => Err(
            "the mixed workload's key split between models is not known to minos report"
                .to_string(),
        ),
        other => Err(format!("workload {other:?} has no single checker model")),
    }
}

/// Re-checks a run dir's history with the checker of this build and updates results.json
/// (`checker`, `verdict`, `causes`; other fields and their order unchanged). The stored verdict
/// is kept, with the reason, when the run cannot be re-checked.
pub fn recheck(run_dir: &Path) -> Result<Recheck, ReportError> {
    recheck_with_history(run_dir).map(|(outcome, _)| outcome)
}

/// As `recheck`, also giving the history text that was checked (when one was read), for the
/// report files to be made from.
pub fn recheck_with_history(run_dir: &Path) -> Result<(Recheck, Option<String>), ReportError> {
    let (outcome, text) = recheck_inner(run_dir)?;
    Ok((outcome, text))
}

fn recheck_inner(run_dir: &Path) -> Result<(Recheck, Option<String>), ReportError> {
    let kept = |why: String| Ok((Recheck::Kept(why), None));
    let results_path = run_dir.join("results.json");
    let text = match std::fs::read_to_string(&results_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return kept("results.json is missing".to_string())
        }
        Err(e) => return kept(format!("results.json is unreadable: {e}")),
    };
    let (Ok(results), Ok(mut ordered)) = (
        serde_json::from_str::<Value>(&text),
        serde_json::from_str::<OrderedJson>(&text),
    ) else {
        return kept("results.json is not JSON".to_string());
    };
    if !results.is_object() {
        return kept("results.json is not a JSON object".to_string());
    }
    let model = match model_of(&results) {
        Ok(m) => m,
        Err(why) => return kept(why),
    };
    let history_path = run_dir.join("history.jsonl");
    if !history_path.exists() {
        return kept("history.jsonl is missing".to_string());
    }
    // Read once: everything below (verdict, hash, op count, report files) uses these bytes.
    let text = match minos_checker::history::read_bytes(&history_path)
        .and_then(|bytes| minos_checker::history::utf8_text(bytes, &history_path))
    {
        Ok(text) => text,
        Err(e) => {
            return refuse(
                run_dir,
                results,
                ordered,
                format!("the history cannot be read: {e}"),
                None,
            )
        }
    };
    let history = match minos_checker::history::parse_text(
        &text,
        &history_path.display().to_string(),
        minos_checker::history::Format::Jsonl,
    ) {
        Ok(h) => h,
        Err(e) => {
            return refuse(
                run_dir,
                results,
                ordered,
                format!("the checker cannot read the history: {e}"),
                Some(text),
            )
        }
    };
    // The same options as the run's own check: counters and registers start at 0.
    let mut options = minos_checker::CheckOptions::new(&model);
    options.init = Some(json!(0));
    if let Some(ms) = results
        .get("options")
        .and_then(|o| o.get("check_time_limit_ms"))
        .and_then(Value::as_u64)
    {
        options.time_limit = Some(std::time::Duration::from_millis(ms));
    }
    let report = match minos_checker::check(&history, &options) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                run_dir,
                results,
                ordered,
                format!("the checker refused the history: {e}"),
                Some(text),
            )
        }
    };
    let checker = serde_json::to_value(&report)
        .map_err(|e| ReportError::Plot(format!("checker report: {e}")))?;
    let before = results
        .get("verdict")
        .and_then(Value::as_str)
        .and_then(Verdict::parse);
    // A re-check that ran out of budget proves nothing: it must not erase a verdict the run's
    // own check did reach.
    let stored_checker = results
        .get("checker")
        .and_then(|c| c.get("verdict"))
        .and_then(Value::as_str)
        .and_then(Verdict::parse);
    if checker.get("verdict").and_then(Value::as_str) == Some("unknown")
        && matches!(stored_checker, Some(Verdict::Valid | Verdict::Invalid))
    {
        let reason = checker
            .get("unknown_reason")
            .and_then(Value::as_str)
            .unwrap_or("a budget ran out");
        let why = format!(
            "the re-check stopped at its {reason} before a verdict, so the run's own {} verdict stands",
            stored_checker.map(Verdict::name).unwrap_or("?")
        );
        // Only the verdict is kept; what describes the history follows the bytes read.
        set_history_identity(&mut ordered, &results, &text, history.ops.len());
        store_results(run_dir, &ordered)?;
        return Ok((Recheck::Kept(why), Some(text)));
    }
    let mut updated = results;
    let after = apply_checker_report(&mut updated, checker);
    for field in ["checker", "causes", "verdict"] {
        ordered.set(field, OrderedJson::from_value(&updated[field]));
    }
    set_history_identity(&mut ordered, &updated, &text, history.ops.len());
    store_results(run_dir, &ordered)?;
    Ok((Recheck::Rechecked { before, after }, Some(text)))
}

/// Makes the run unknown because its history could not be checked: `checker` says why,
/// `verdict` and `causes` are recomputed (other causes stand).
fn refuse(
    run_dir: &Path,
    results: Value,
    mut ordered: OrderedJson,
    why: String,
    text: Option<String>,
) -> Result<(Recheck, Option<String>), ReportError> {
    let why = minos_checker::history::text::bound_problem(&why);
    let mut updated = results.clone();
    apply_checker_report(
        &mut updated,
        json!({"verdict": "unknown", "unknown_reason": "history not checked", "error": why}),
    );
    for field in ["checker", "causes", "verdict"] {
        ordered.set(field, OrderedJson::from_value(&updated[field]));
    }
    if let Some(text) = &text {
        let ops = minos_reports_history_ops(text);
        set_history_identity(&mut ordered, &results, text, ops);
    }
    store_results(run_dir, &ordered)?;
    Ok((Recheck::Refused(why), text))
}

/// Client ops in a history the checker refused, as the report pages count them.
fn minos_reports_history_ops(text: &str) -> usize {
    crate::history::parse_jsonl(text).ops.len()
}

/// Makes results.json's `history` (SHA-256, op count) describe `text`, the history that was
/// read. When the bytes are not those the run recorded, the run's own hash is kept as
/// `sha256_at_run`, so that the change stays visible.
fn set_history_identity(ordered: &mut OrderedJson, results: &Value, text: &str, ops_count: usize) {
    let mut history = results.get("history").cloned().unwrap_or_else(|| json!({}));
    let Some(object) = history.as_object_mut() else {
        return;
    };
    let sha256 = crate::rebuild::sha256_hex(text.as_bytes());
    let recorded = object
        .get("sha256")
        .and_then(Value::as_str)
        .map(str::to_string);
    if recorded.as_deref() != Some(sha256.as_str()) && !object.contains_key("sha256_at_run") {
        if let Some(recorded) = recorded {
            object.insert("sha256_at_run".to_string(), json!(recorded));
        }
    }
    object.insert("sha256".to_string(), json!(sha256));
    object.insert("ops_count".to_string(), json!(ops_count));
    ordered.set("history", OrderedJson::from_value(&history));
}

/// Replaces `checker` in results.json with a new CheckReport and recomputes `verdict` and
/// `causes`. Other causes (invariants, liveness, ...) are kept as recorded.
pub fn apply_checker_report(results: &mut Value, checker: Value) -> Verdict {
    let checker_verdict = checker
        .get("verdict")
        .and_then(Value::as_str)
        .and_then(Verdict::parse)
        .unwrap_or(Verdict::Unknown);
    let mut causes: Vec<Value> = results
        .get("causes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|c| c.as_str() != Some("linearizability"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if checker_verdict == Verdict::Invalid {
        causes.insert(0, json!("linearizability"));
    }
    let verdict = if !causes.is_empty() {
        Verdict::Invalid
    } else if checker_verdict == Verdict::Unknown {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    if let Some(object) = results.as_object_mut() {
        object.insert("checker".to_string(), checker);
        object.insert("causes".to_string(), Value::Array(causes));
        object.insert("verdict".to_string(), json!(verdict.name()));
    }
    verdict
}

/// Writes an updated results.json atomically (pretty, as the run wrote it).
pub fn store_results(run_dir: &Path, results: &OrderedJson) -> Result<(), ReportError> {
    let text = serde_json::to_string_pretty(results)
        .map_err(|e| ReportError::Plot(format!("results.json: {e}")))?;
    write_atomic(&run_dir.join("results.json"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_checker_clears_linearizability_but_keeps_other_causes() {
        let mut r = json!({"verdict": "invalid", "causes": ["linearizability", "invariant: one leader per term"], "checker": {"verdict": "invalid"}});
        let v = apply_checker_report(&mut r, json!({"verdict": "valid", "counterexample": null}));
        assert_eq!(v, Verdict::Invalid);
        assert_eq!(r["causes"], json!(["invariant: one leader per term"]));
        assert_eq!(r["checker"]["verdict"], "valid");

        let mut r = json!({"verdict": "invalid", "causes": ["linearizability"]});
        assert_eq!(
            apply_checker_report(&mut r, json!({"verdict": "valid"})),
            Verdict::Valid
        );
        assert_eq!(r["verdict"], "valid");

        let mut r = json!({"verdict": "valid", "causes": []});
        assert_eq!(
            apply_checker_report(&mut r, json!({"verdict": "unknown"})),
            Verdict::Unknown
        );
        let mut r = json!({"verdict": "valid", "causes": []});
        assert_eq!(
            apply_checker_report(&mut r, json!({"verdict": "invalid"})),
            Verdict::Invalid
        );
        assert_eq!(r["causes"], json!(["linearizability"]));
    }
}
