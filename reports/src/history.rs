//! A tolerant reader of `history.jsonl` (DESIGN.md §3) for display purposes: invocations are
//! paired with their completions per process, nemesis records are kept apart, and malformed
//! lines are counted and described instead of aborting the report (a history is untrusted input,
//! and a report of a broken history is still useful). Unknown fields are ignored.

use std::collections::BTreeMap;

use serde_json::Value;

/// How a client operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
    /// Invoked and never completed in the history (treated like `info` by a checker).
    Pending,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Fail, Outcome::Info, Outcome::Pending];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Pending => 3,
        }
    }
}

/// One client operation: an invocation and (usually) its completion.
#[derive(Clone, Debug)]
pub struct Op {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    pub invoke_index: u64,
    pub invoke_time_ns: u64,
    pub complete_index: Option<u64>,
    pub complete_time_ns: Option<u64>,
    pub outcome: Outcome,
    pub invoke_value: Value,
    pub result: Value,
}

impl Op {
    /// Latency of a completed op; `None` for a pending one.
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_time_ns
            .map(|c| c.saturating_sub(self.invoke_time_ns))
    }
}

/// One record of the nemesis (fault injector).
#[derive(Clone, Debug)]
pub struct NemesisRecord {
    pub index: u64,
    pub time_ns: u64,
    pub kind: String,
    pub f: String,
    pub value: Value,
}

/// A history as the reports see it.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Client ops in invocation order.
    pub ops: Vec<Op>,
    pub nemesis: Vec<NemesisRecord>,
    pub records_count: u64,
    /// Time of the last record.
    pub end_time_ns: u64,
    pub problems_count: u64,
    /// The first few problems, as "line N: what".
    pub problems: Vec<String>,
    /// The times are history indexes (one index = 1000 ns), for histories read from formats
    /// without clocks (`minos check --html`): drawings label them as indexes, not seconds.
    pub times_are_indexes: bool,
}

const PROBLEMS_KEPT: usize = 20;

impl History {
    fn problem(&mut self, line_number: usize, what: String) {
        self.problems_count += 1;
        if self.problems.len() < PROBLEMS_KEPT {
            self.problems.push(format!("line {line_number}: {what}"));
        }
    }

    /// Ops whose invocation or completion has history index `index`.
    pub fn op_by_index(&self, index: u64) -> Option<&Op> {
        let by_invoke = self.ops.binary_search_by_key(&index, |op| op.invoke_index);
        match by_invoke {
            Ok(i) => Some(&self.ops[i]),
            Err(_) => self.ops.iter().find(|op| op.complete_index == Some(index)),
        }
    }
}

enum Process {
    Client(u64),
    Nemesis,
}

fn parse_process(value: Option<&Value>) -> Result<Process, String> {
    match value {
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Process::Client)
            .ok_or_else(|| format!("process {n} is not a non-negative integer")),
        Some(Value::String(s)) if s == "nemesis" => Ok(Process::Nemesis),
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map(Process::Client)
            .map_err(|_| format!("unknown process {s:?}")),
        Some(other) => Err(format!(
            "process {other} is neither a number nor \"nemesis\""
        )),
        None => Err("missing \"process\"".to_string()),
    }
}

/// Parses the text of a `history.jsonl`. Never fails: bad lines become `problems`.
pub fn parse_jsonl(text: &str) -> History {
    let mut history = History::default();
    // Index of the op each process has in flight.
    let mut in_flight: BTreeMap<u64, usize> = BTreeMap::new();
    for (line_number, line) in minos_checker::history::text::lines(text) {
        let line_index = line_number - 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let record: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(error) => {
                history.problem(line_number, format!("not JSON: {error}"));
                continue;
            }
        };
        let Some(object) = record.as_object() else {
            history.problem(line_number, "not a JSON object".to_string());
            continue;
        };
        history.records_count += 1;
        let index = object
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(line_index as u64);
        let Some(time_ns) = object.get("time").and_then(Value::as_u64) else {
            history.problem(line_number, "missing or invalid \"time\"".to_string());
            continue;
        };
        history.end_time_ns = history.end_time_ns.max(time_ns);
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let f = object.get("f").map(value_as_label).unwrap_or_default();
        let value = object.get("value").cloned().unwrap_or(Value::Null);
        let process = match parse_process(object.get("process")) {
            Ok(p) => p,
            Err(what) => {
                history.problem(line_number, what);
                continue;
            }
        };
        let process = match process {
            Process::Nemesis => {
                history.nemesis.push(NemesisRecord {
                    index,
                    time_ns,
                    kind,
                    f,
                    value,
                });
                continue;
            }
            Process::Client(p) => p,
        };
        let key = object.get("key").map(value_as_label);
        match kind.as_str() {
            "invoke" => {
                if let Some(previous) = in_flight.remove(&process) {
                    let op_index = history.ops[previous].invoke_index;
                    history.problem(
                        line_number,
                        format!(
                            "process {process} invoked again while op {op_index} was in flight"
                        ),
                    );
                }
                in_flight.insert(process, history.ops.len());
                history.ops.push(Op {
                    process,
                    f,
                    key,
                    invoke_index: index,
                    invoke_time_ns: time_ns,
                    complete_index: None,
                    complete_time_ns: None,
                    outcome: Outcome::Pending,
                    invoke_value: value,
                    result: Value::Null,
                });
            }
            "ok" | "fail" | "info" => {
                let Some(position) = in_flight.remove(&process) else {
                    history.problem(
                        line_number,
                        format!("{kind} of process {process} without an invoke"),
                    );
                    continue;
                };
                let op = &mut history.ops[position];
                op.complete_index = Some(index);
                op.complete_time_ns = Some(time_ns.max(op.invoke_time_ns));
                op.outcome = match kind.as_str() {
                    "ok" => Outcome::Ok,
                    "fail" => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.result = value;
            }
            other => history.problem(line_number, format!("unknown type {other:?}")),
        }
    }
    // Ops must be sorted by invocation index for lookups; a well-formed history already is.
    if !history
        .ops
        .windows(2)
        .all(|w| w[0].invoke_index <= w[1].invoke_index)
    {
        history.ops.sort_by_key(|op| op.invoke_index);
    }
    history
}

/// A compact one-line rendering of a JSON value for tables and hovers.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_as_label(value: &Value) -> String {
    value_text(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_tolerates_bad_lines() {
        let text = r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"add","key":"k1","value":5}
{"index":1,"time":15,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1"],["n2"]]}}
garbage
{"index":2,"time":30,"process":1,"type":"ok","f":"add","key":"k1","value":[5,5]}
{"index":3,"time":40,"process":2,"type":"invoke","f":"read","value":null}
{"index":4,"time":50,"process":9,"type":"ok","f":"read","value":3}
"#;
        let h = parse_jsonl(text);
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0].outcome, Outcome::Ok);
        assert_eq!(h.ops[0].latency_ns(), Some(20));
        assert_eq!(h.ops[1].outcome, Outcome::Pending);
        assert_eq!(h.nemesis.len(), 1);
        assert_eq!(h.problems_count, 2);
        assert_eq!(h.end_time_ns, 50);
        assert_eq!(h.op_by_index(2).unwrap().invoke_index, 0);
    }
}
