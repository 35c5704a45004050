//! `jepsen.independent` histories: Jepsen tests that run one small object per key write every
//! client value as a pair `[key value]` (the key, then the value of the op on that key's
//! object). Splitting such a history by key lets each key be checked on its own
//! (P-compositionality), as Jepsen's independent checker does. This module decides whether an
//! EDN history has that shape and rewrites its records into keyed records before pairing.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{InputError, Name, Names, Process, RawRecord, RecordType};

/// Whether `[key value]` values are split by key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Independent {
    /// Split an EDN history when its shape says it is independent (see `looks_independent`).
    Auto,
    /// Always split; a client value that is not a `[key value]` pair is an input error.
    Yes,
    /// Never split.
    No,
}

/// The key of a `[key value]` value, when the value has that shape. Keys are scalars (Jepsen
/// uses integers, strings or keywords); a vector first element is a micro-op or a cas pair's
/// part, never a key.
fn tuple_key(value: &Value) -> Option<String> {
    match value.as_array().map(Vec::as_slice) {
        Some([Value::Number(number), _]) => Some(number.to_string()),
        Some([Value::String(name), _]) => Some(name.clone()),
        _ => None,
    }
}

/// A `fail` or `info` completion says nothing about the op's output, so a client that failed
/// may write an error (or nil) in place of the pair: it keeps the key of its invoke.
fn may_drop_pair(record: &RawRecord) -> bool {
    matches!(record.kind, RecordType::Fail | RecordType::Info)
}

/// The decision of `Auto`: every client record carries a `[key value]` value and no `:key`
/// (except `fail`/`info` completions, see `may_drop_pair`), each completion names the key of
/// its invoke, and some invoke has the value `[key nil]`. That last condition keeps a plain
/// history whose every op is a `cas [old new]` unsplit: only an independent history writes a
/// read's (or a dequeue's, an acquire's) missing argument as `[key nil]`.
fn looks_independent(records: &[RawRecord]) -> bool {
    let mut open: BTreeMap<u64, String> = BTreeMap::new();
    let mut clients_count = 0usize;
    let mut some_nil_argument = false;
    for record in records {
        let Process::Client(process) = record.process else {
            continue;
        };
        clients_count += 1;
        if record.key.is_some() {
            return false;
        }
        let Some(key) = tuple_key(&record.value) else {
            if record.kind != RecordType::Invoke && may_drop_pair(record) {
                open.remove(&process);
                continue;
            }
            return false;
        };
        match record.kind {
            RecordType::Invoke => {
                some_nil_argument |= record.value[1].is_null();
                open.insert(process, key);
            }
            _ => {
                if open.remove(&process).is_some_and(|invoked| invoked != key) {
                    return false;
                }
            }
        }
    }
    clients_count > 0 && some_nil_argument
}

/// Rewrites `[key value]` records into keyed records when `mode` says so; returns whether it
/// did. An ok read whose value is `nil` reads as "not observed", as in any EDN history.
pub(crate) fn split(
    records: &mut [RawRecord],
    mode: Independent,
    source_name: &str,
) -> Result<bool, InputError> {
    match mode {
        Independent::No => return Ok(false),
        Independent::Auto if !looks_independent(records) => return Ok(false),
        Independent::Auto => {}
        Independent::Yes => {
            for record in records.iter() {
                if record.process == Process::Nemesis {
                    continue;
                }
                let problem = if record.key.is_some() {
                    "--independent: the op has a :key already; its value cannot name one"
                        .to_string()
                } else if tuple_key(&record.value).is_none() && !may_drop_pair(record) {
                    format!(
                        "--independent: value {} is not a [key value] pair with an integer, string or keyword key",
                        record.value
                    )
                } else {
                    continue;
                };
                return Err(InputError {
                    file: source_name.to_string(),
                    line: record.line,
                    problem,
                });
            }
        }
    }
    // Key of the pending invoke per process, for completions without a pair.
    let mut open: BTreeMap<u64, Name> = BTreeMap::new();
    let mut names = Names::default();
    for record in records.iter_mut() {
        let Process::Client(process) = record.process else {
            continue;
        };
        let Some(key) = tuple_key(&record.value).map(|key| names.get(&key)) else {
            debug_assert!(may_drop_pair(record), "checked above");
            // An unmatched completion stays unkeyed; pairing reports it.
            record.key = open.remove(&process);
            continue;
        };
        match record.kind {
            RecordType::Invoke => {
                open.insert(process, key.clone());
            }
            _ => {
                open.remove(&process);
            }
        }
        let inner = match std::mem::take(&mut record.value) {
            Value::Array(mut pair) => pair.pop().expect("a pair has two items"),
            _ => unreachable!("a tuple is an array"),
        };
        record.unknown_output =
            record.kind == RecordType::Ok && record.f == "read" && inner.is_null();
        record.key = Some(key);
        record.value = inner;
    }
    Ok(true)
}
