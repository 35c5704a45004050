//! A tolerant view of a run's `results.json` (INTERFACES.md): every field is optional, and
//! what is missing is listed so that the page can say so instead of failing.

use serde_json::Value;

use crate::history::value_text;

/// The overall verdict of a run, as shown in colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "valid" => Some(Verdict::Valid),
            "invalid" => Some(Verdict::Invalid),
            "unknown" => Some(Verdict::Unknown),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

/// A fault interval as recorded in results.json (`faults`) or derived from nemesis records.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: String,
    pub start_ns: u64,
    /// `None` when the fault was never healed before the end of the run.
    pub stop_ns: Option<u64>,
    pub targets: Vec<String>,
    pub detail: Value,
}

impl Fault {
    /// "n1,n2 | n3,n4,n5" for partitions with groups, else the targets joined.
    pub fn targets_label(&self) -> String {
        if let Some(groups) = self.detail.get("groups").and_then(Value::as_array) {
            let parts: Vec<String> = groups
                .iter()
                .map(|g| match g.as_array() {
                    Some(nodes) => nodes.iter().map(value_text).collect::<Vec<_>>().join(","),
                    None => value_text(g),
                })
                .collect();
            if !parts.is_empty() {
                return parts.join(" | ");
            }
        }
        self.targets.join(",")
    }

    pub fn stop_or(&self, end_ns: u64) -> u64 {
        self.stop_ns.unwrap_or(end_ns).max(self.start_ns)
    }
}

/// The parts of results.json the reports show.
#[derive(Clone, Debug, Default)]
pub struct RunResults {
    pub raw: Value,
    pub test_name: Option<String>,
    pub run_id: Option<String>,
    pub seed: Option<String>,
    pub minos_version: Option<String>,
    pub verdict: Option<Verdict>,
    pub causes: Vec<String>,
    pub options: Option<Value>,
    pub checker: Option<Value>,
    pub invariants: Option<Vec<Value>>,
    pub liveness: Option<Value>,
    pub faults: Option<Vec<Fault>>,
    pub history_sha256: Option<String>,
    pub ops_count: Option<u64>,
    pub timings: Option<Value>,
    pub reproduce: Option<String>,
    /// Fields the page would show but results.json does not have.
    pub missing: Vec<&'static str>,
    /// Fields present with an unexpected shape.
    pub malformed: Vec<String>,
}

impl RunResults {
    /// Reads results.json text; a file that is not a JSON object yields empty results that say so.
    pub fn parse(text: &str) -> RunResults {
        match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => RunResults::from_value(value),
            Ok(_) => RunResults::empty_because("results.json is not a JSON object"),
            Err(error) => RunResults::empty_because(&format!("results.json is not JSON: {error}")),
        }
    }

    pub fn empty_because(why: &str) -> RunResults {
        let mut r = RunResults::from_value(Value::Object(Default::default()));
        r.malformed.push(why.to_string());
        r
    }

    pub fn from_value(raw: Value) -> RunResults {
        let mut r = RunResults {
            raw: raw.clone(),
            ..Default::default()
        };
        let get = |name: &str| raw.get(name).filter(|v| !v.is_null());
        r.test_name = get("test_name").map(value_text);
        r.run_id = get("run_id").map(value_text);
        r.seed = get("seed").map(value_text);
        r.minos_version = get("minos_version").map(value_text);
        match get("verdict").and_then(Value::as_str) {
            Some(text) => match Verdict::parse(text) {
                Some(v) => r.verdict = Some(v),
                None => r
                    .malformed
                    .push(format!("verdict {text:?} is not valid/invalid/unknown")),
            },
            None => r.missing.push("verdict"),
        }
        r.causes = get("causes")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(value_text).collect())
            .unwrap_or_default();
        r.options = get("options").cloned();
        r.checker = get("checker").filter(|v| v.is_object()).cloned();
        r.invariants = get("invariants").and_then(Value::as_array).cloned();
        r.liveness = get("liveness").cloned();
        r.faults = get("faults").and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(|f| {
                    let parsed = parse_fault(f);
                    if parsed.is_none() {
                        r.malformed
                            .push(format!("fault entry {f} lacks kind/start_ns"));
                    }
                    parsed
                })
                .collect()
        });
        r.history_sha256 = get("history").and_then(|h| h.get("sha256")).map(value_text);
        r.ops_count = get("history")
            .and_then(|h| h.get("ops_count"))
            .and_then(Value::as_u64);
        r.timings = get("timings").cloned();
        r.reproduce = get("reproduce").map(value_text);
        for (name, present) in [
            ("seed", r.seed.is_some()),
            ("reproduce", r.reproduce.is_some()),
            ("options", r.options.is_some()),
            ("checker", r.checker.is_some()),
            ("invariants", r.invariants.is_some()),
            ("faults", r.faults.is_some()),
        ] {
            if !present {
                r.missing.push(name);
            }
        }
        r
    }

    /// The checker's verdict, when the checker report is present.
    pub fn checker_verdict(&self) -> Option<Verdict> {
        self.checker
            .as_ref()?
            .get("verdict")?
            .as_str()
            .and_then(Verdict::parse)
    }

    /// The counterexample object, when the checker found one.
    pub fn counterexample(&self) -> Option<&Value> {
        self.checker
            .as_ref()?
            .get("counterexample")
            .filter(|c| c.is_object())
    }

    /// The verdict shown: the overall one, else the checker's.
    pub fn shown_verdict(&self) -> Verdict {
        self.verdict
            .or_else(|| self.checker_verdict())
            .unwrap_or(Verdict::Unknown)
    }

    pub fn model(&self) -> Option<String> {
        self.checker.as_ref()?.get("model").map(value_text)
    }
}

fn parse_fault(value: &Value) -> Option<Fault> {
    let kind = value.get("kind").map(value_text)?;
    let start_ns = value.get("start_ns")?.as_u64()?;
    let stop_ns = value.get("stop_ns").and_then(Value::as_u64);
    let targets = value
        .get("targets")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(value_text).collect())
        .unwrap_or_default();
    let detail = value.get("detail").cloned().unwrap_or(Value::Null);
    Some(Fault {
        kind,
        start_ns,
        stop_ns,
        targets,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_are_listed_not_fatal() {
        let r = RunResults::parse(r#"{"seed": 7, "faults": [{"kind": "kill", "start_ns": 5}]}"#);
        assert_eq!(r.seed.as_deref(), Some("7"));
        assert!(r.missing.contains(&"verdict"));
        assert!(r.missing.contains(&"reproduce"));
        assert_eq!(r.shown_verdict(), Verdict::Unknown);
        assert_eq!(r.faults.unwrap()[0].stop_ns, None);
        let broken = RunResults::parse("[1,2");
        assert!(!broken.malformed.is_empty());
    }

    #[test]
    fn partition_label_shows_groups() {
        let f = Fault {
            kind: "partition".into(),
            start_ns: 0,
            stop_ns: Some(1),
            targets: vec!["n1".into()],
            detail: serde_json::json!({"groups": [["n1","n2"],["n3"]]}),
        };
        assert_eq!(f.targets_label(), "n1,n2 | n3");
    }
}
