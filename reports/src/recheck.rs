//! Re-running the linearizability checker on a stored history (`minos report` after a checker
//! fix) and folding its report back into results.json: the `checker` field is replaced and the
//! overall `verdict` and `causes` recomputed, keeping every other cause (invariants, liveness).

use std::path::Path;

use serde_json::{json, Value};

use crate::atomic::write_atomic;
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
        }
    }
}

/// Re-checks a run dir's history, if this build has a checker, and updates results.json.
pub fn recheck(run_dir: &Path) -> Result<Recheck, ReportError> {
    // The checker crate does not yet provide `check` on this branch; until it does, the stored
    // verdict stands and the page says so.
    let _ = run_dir;
    Ok(Recheck::Kept(
        "this build's checker has no check() entry point yet".to_string(),
    ))
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
pub fn store_results(run_dir: &Path, results: &Value) -> Result<(), ReportError> {
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
