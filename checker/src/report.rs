//! The verdict of a check and its explanation, as JSON (`minos check --json`, the `checker`
//! field of results.json) and as plain text for a terminal.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{Operation, Outcome, Output};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckReport {
    pub verdict: Verdict,
    pub model: String,
    /// Client operations in the history (fail ones included).
    pub ops_count: usize,
    /// One entry per independently checked object, in key order.
    pub partitions: Vec<PartitionReport>,
    /// `"time limit"` or `"memory limit"` when the verdict is unknown.
    pub unknown_reason: Option<String>,
    /// When the verdict is unknown, the phase the budget stopped: "reading", "parsing",
    /// "partitioning" or "searching".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_phase: Option<String>,
    /// Present only when invalid: the first invalid partition in key order.
    pub counterexample: Option<Counterexample>,
    pub elapsed_ms: u64,
    /// Largest memory the searches held at once, as counted by the checker (bytes).
    #[serde(default)]
    pub peak_memory_bytes: u64,
}

impl CheckReport {
    /// A valid report of no object yet, for a history of `ops_count` ops.
    pub fn new(model: &str, ops_count: usize) -> CheckReport {
        CheckReport {
            verdict: Verdict::Valid,
            model: model.to_string(),
            ops_count,
            partitions: Vec::new(),
            unknown_reason: None,
            cut_phase: None,
            counterexample: None,
            elapsed_ms: 0,
            peak_memory_bytes: 0,
        }
    }

    /// The report of a history the time limit stopped before it was read whole (`phase`
    /// "reading" or "parsing"): unknown, nothing checked.
    pub fn cut_before_checking(
        model: &str,
        phase: crate::deadline::Phase,
        elapsed_ms: u64,
    ) -> CheckReport {
        let mut report = CheckReport::new(model, 0);
        report.verdict = Verdict::Unknown;
        report.unknown_reason = Some("time limit".to_string());
        report.cut_phase = Some(phase.name().to_string());
        report.elapsed_ms = elapsed_ms;
        report
    }

    /// "time limit", or "time limit while parsing" when the phase is known.
    pub fn unknown_reason_text(&self) -> String {
        let reason = self.unknown_reason.as_deref().unwrap_or("budget");
        match &self.cut_phase {
            Some(phase) => format!("{reason} ran out while {phase}"),
            None => format!("{reason} ran out"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartitionReport {
    /// The key of this object; null for an unkeyed history or `--no-partition`.
    pub key: Option<String>,
    pub verdict: Verdict,
    /// Operations of this object that the search considered (fail ops and ops that cannot
    /// matter, such as reads that may never have happened, are left out).
    pub ops_count: usize,
    pub states_explored: u64,
    /// Search steps taken (tries of a candidate op, and backtracks).
    #[serde(default)]
    pub search_steps: u64,
    pub elapsed_ms: u64,
    #[serde(default)]
    pub memory_bytes: u64,
    /// Why the verdict is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For an undecided object: how far the search got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_prefix: Option<PrefixReached>,
    /// Only when `CheckOptions::linearization` is set: the order the search found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearization: Option<Linearization>,
}

/// An order of an object's ops that the model accepts, with the state after each op: for a
/// linearizable object the whole linearization found; otherwise the longest linearizable
/// prefix the search found (for an invalid object, of the object as recorded, not of the
/// smaller set of ops its counterexample explains).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Linearization {
    /// Every op that must happen is in the order (the object is linearizable).
    pub complete: bool,
    pub steps: Vec<LinearizedStep>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearizedStep {
    /// History index of the op's invoke.
    pub index: u64,
    /// The model state after the op, as compact JSON cut to `STATE_TEXT_CHARS` characters
    /// (a cut text ends in `…`): a map state of a large object would make a linearization
    /// of n ops cost n times the map.
    pub state: String,
}

/// Longest state text a linearization step keeps.
pub const STATE_TEXT_CHARS: usize = 200;

/// The longest linearizable prefix the search reached on an object it did not decide: what
/// was decided so far (these ops, in this order, are consistent with the model).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrefixReached {
    /// Ops in the prefix, and ops of the object that must be linearized in all (ok ops).
    pub ops_count: usize,
    pub must_happen_count: usize,
    /// The last ops of the prefix (at most `PREFIX_REACHED_SHOWN`).
    pub last_ops: Vec<OpSummary>,
    /// The model state after the prefix.
    pub state: Value,
}

/// How many ops of an undecided object's prefix a report lists.
pub const PREFIX_REACHED_SHOWN: usize = 5;

/// An operation as explanations show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// History index of the invoke.
    pub index: u64,
    pub process: u64,
    /// The process's name, when the history named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub invoke_value: Value,
    /// The observed output; null when unknown (then `observed` is false).
    pub result: Value,
    /// The output was observed (a null `result` is then a value: absent, or empty).
    #[serde(default)]
    pub observed: bool,
    /// "ok" or "info".
    #[serde(rename = "type")]
    pub kind: String,
    /// History index of the completion, if any.
    pub completion_index: Option<u64>,
}

impl OpSummary {
    pub fn from_operation(op: &Operation) -> OpSummary {
        let (result, observed) = match &op.outcome {
            Outcome::Ok(Output::Known(value)) => (value.clone(), true),
            _ => (Value::Null, false),
        };
        OpSummary {
            index: op.index,
            process: op.process,
            process_name: op.process_name.as_ref().map(|name| name.to_string()),
            observed,
            f: op.f.to_string(),
            key: op.key.as_ref().map(|key| key.to_string()),
            invoke_value: op.invoke_value.clone(),
            result,
            kind: op.kind_name().to_string(),
            completion_index: op.completion_index,
        }
    }

    /// `#12 process 3 cas [1,2] -> ok`, one line for people.
    pub fn describe(&self) -> String {
        let mut line = match &self.process_name {
            Some(name) => format!("#{} process {name:?} {}", self.index, self.f),
            None => format!("#{} process {} {}", self.index, self.process, self.f),
        };
        if let Some(key) = &self.key {
            let _ = write!(line, " {key:?}");
        }
        if !self.invoke_value.is_null() {
            let _ = write!(line, " {}", self.invoke_value);
        }
        match self.kind.as_str() {
            "ok" if self.result.is_null() && !self.invoke_value.is_null() => {
                line.push_str(" -> ok")
            }
            // A queue's null result is an observation: the queue was empty.
            "ok" if self.result.is_null() && self.f == "dequeue" => {
                line.push_str(" -> null (found the queue empty)")
            }
            "ok" if self.result.is_null() && self.observed => line.push_str(" -> null"),
            "ok" if self.result.is_null() => line.push_str(" -> ? (not observed)"),
            "ok" => {
                let _ = write!(line, " -> {}", self.result);
            }
            _ => line.push_str(" -> info (may take effect any time after its invoke, or never)"),
        }
        line
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StuckOp {
    pub op: OpSummary,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Window {
    pub first_index: u64,
    pub last_index: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counterexample {
    pub key: Option<String>,
    /// The fewest ops found that cannot all be ordered, whatever every other op did (each
    /// other op may have taken effect at any time after its invoke, or never), in history
    /// order. Empty when the search for them ran out of its budget.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub core: Vec<OpSummary>,
    /// The longest linearization the search found, in order (at most the last
    /// `PREFIX_SHOWN` ops; `linearized_prefix_omitted` counts the ones before).
    pub linearized_prefix: Vec<OpSummary>,
    #[serde(default)]
    pub linearized_prefix_omitted: usize,
    /// The model state after that prefix.
    pub state: Value,
    /// The ops that could come next, and why none leads to a linearization.
    pub stuck: Vec<StuckOp>,
    /// The op whose completion cannot be reached (it must take effect before it).
    #[serde(default)]
    pub blocked: Option<OpSummary>,
    /// An op that no order of the ops called before it completed can make legal (a read of a
    /// value nothing wrote), and why: found before any search, it is the whole counterexample
    /// (then `core` is this op alone, and the prefix is empty: none was searched for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_legal: Option<StuckOp>,
    pub window: Window,
    /// Hints for reading the verdict (e.g. about the initial state assumed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub text: String,
}

/// How many ops of the linearized prefix an explanation lists.
pub const PREFIX_SHOWN: usize = 200;
/// How many of them the terminal text shows.
const PREFIX_SHOWN_IN_TEXT: usize = 12;
/// How many ops of the core the text lists (the last ones, nearest the violation): a core
/// the minimisation could not shrink is the object up to its violation, thousands of ops.
const CORE_SHOWN_IN_TEXT: usize = 40;

impl Counterexample {
    /// Renders the terminal text from the structured fields.
    pub(crate) fn render_text(&self, model: &str) -> String {
        let mut text = String::new();
        let object = match &self.key {
            Some(key) => format!("key {key:?}"),
            None => "the history".to_string(),
        };
        let _ = writeln!(text, "Not linearizable ({object}, model {model}).");
        if let Some(never) = &self.never_legal {
            let _ = writeln!(
                text,
                "This op can never take effect, whatever the other ops did:\n  {}\n      {}",
                never.op.describe(),
                never.reason
            );
        } else if !self.core.is_empty() {
            let shown = self.core.len().min(CORE_SHOWN_IN_TEXT);
            let _ = writeln!(
                text,
                "These {} ops cannot all be ordered, whatever the other ops did (each may have taken effect any time after its invoke, or never){}:",
                self.core.len(),
                if shown < self.core.len() {
                    format!("; the last {shown} (--json lists them all)")
                } else {
                    String::new()
                }
            );
            for op in &self.core[self.core.len() - shown..] {
                let _ = writeln!(text, "  {}", op.describe());
            }
        }
        let prefix_count = self.linearized_prefix.len() + self.linearized_prefix_omitted;
        let shown = self.linearized_prefix.len().min(PREFIX_SHOWN_IN_TEXT);
        if self.never_legal.is_some() && prefix_count == 0 {
            // Nothing more to say: the op above is the whole counterexample.
            return self.render_tail(text);
        }
        if prefix_count == 0 {
            let _ = writeln!(text, "No op can be linearized first.");
        } else {
            let _ = writeln!(
                text,
                "Longest linearizable prefix{}: {prefix_count} op{}{}:",
                if self.never_legal.is_some() {
                    " a bounded search reached"
                } else {
                    ""
                },
                if prefix_count == 1 { "" } else { "s" },
                if shown < prefix_count {
                    format!(" (last {shown} shown)")
                } else {
                    String::new()
                }
            );
            for op in &self.linearized_prefix[self.linearized_prefix.len() - shown..] {
                let _ = writeln!(text, "  {}", op.describe());
            }
        }
        let _ = writeln!(text, "State after it: {}", self.state);
        if self.never_legal.is_some() {
            // The prefix is what a short search reached, not where every order failed.
            return self.render_tail(text);
        }
        if let Some(blocked) = &self.blocked {
            let _ = writeln!(
                text,
                "Op #{} (process {}) completed at #{} so it must take effect before that, but no pending op can be linearized next:",
                blocked.index,
                blocked.process,
                blocked.completion_index.map_or("?".to_string(), |index| index.to_string())
            );
        }
        for stuck in &self.stuck {
            let _ = writeln!(text, "  {}\n      {}", stuck.op.describe(), stuck.reason);
        }
        self.render_tail(text)
    }

    /// The window and the notes, after `text`.
    fn render_tail(&self, mut text: String) -> String {
        let _ = write!(
            text,
            "Window: history indexes {}..={}",
            self.window.first_index, self.window.last_index
        );
        for note in &self.notes {
            let _ = write!(text, "\nNote: {note}");
        }
        text
    }
}

impl CheckReport {
    /// Plain text for a terminal: the counterexample when invalid, else a one-line summary.
    pub fn explanation_text(&self) -> String {
        if let Some(counterexample) = &self.counterexample {
            return counterexample.text.clone();
        }
        let decided = self
            .partitions
            .iter()
            .filter(|partition| partition.verdict != Verdict::Unknown)
            .count();
        match self.verdict {
            Verdict::Valid => format!(
                "Linearizable ({} ops, {} objects).",
                self.ops_count,
                self.partitions.len()
            ),
            Verdict::Unknown => {
                let mut text = format!(
                    "Unknown: the {}; {decided} of {} objects decided (all linearizable so far).",
                    self.unknown_reason_text(),
                    self.partitions.len()
                );
                for partition in &self.partitions {
                    let Some(prefix) = &partition.longest_prefix else {
                        continue;
                    };
                    let object = match &partition.key {
                        Some(key) => format!("key {key:?}"),
                        None => "the history".to_string(),
                    };
                    let _ = write!(
                        text,
                        "\nUndecided {object}: the longest linearizable prefix reached holds {} ops (the object has {} ops that must happen); state after it: {}",
                        prefix.ops_count, prefix.must_happen_count, prefix.state
                    );
                    if let Some(last) = prefix.last_ops.last() {
                        let _ = write!(text, "; it ends with {}", last.describe());
                    }
                }
                text
            }
            Verdict::Invalid => "Not linearizable.".to_string(),
        }
    }
}
