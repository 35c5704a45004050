//! Reader of Jepsen console logs as in Porcupine's etcd test data:
//! `INFO  jepsen.util - <process> :<type> :<f> <value>` (tabs or spaces), values in EDN.

use clojure_reader::edn;

use super::edn::edn_to_json;
use super::{InputError, Process, RawRecord, RecordType};

pub(crate) fn read_records(text: &str, source_name: &str) -> Result<Vec<RawRecord>, InputError> {
    let mut records = Vec::new();
    for (line_offset, line) in text.lines().enumerate() {
        let line_number = line_offset + 1;
        let error = |problem: String| InputError {
            file: source_name.to_string(),
            line: line_number,
            problem,
        };
        let Some((_, rest)) = line.split_once("jepsen.util - ") else {
            // Other log lines carry no operations.
            continue;
        };
        let mut tokens = Vec::with_capacity(3);
        let mut remaining = rest.trim();
        while tokens.len() < 3 && !remaining.is_empty() {
            let end = remaining
                .find(char::is_whitespace)
                .unwrap_or(remaining.len());
            tokens.push(&remaining[..end]);
            remaining = remaining[end..].trim_start();
        }
        let [process, kind, f] = tokens[..] else {
            return Err(error(format!(
                "expected `<process> :<type> :<f> <value>`, found {rest:?}"
            )));
        };
        let value_text = if remaining.is_empty() {
            "nil"
        } else {
            remaining.trim_end()
        };
        let process =
            match process {
                ":nemesis" | "nemesis" => Process::Nemesis,
                number => Process::Client(number.parse().map_err(|_| {
                    error(format!("process {number:?} is not a number or :nemesis"))
                })?),
            };
        let kind = match kind {
            ":invoke" => RecordType::Invoke,
            ":ok" => RecordType::Ok,
            ":fail" => RecordType::Fail,
            ":info" => RecordType::Info,
            other => {
                return Err(error(format!(
                    "unknown type {other:?} (expected :invoke, :ok, :fail or :info)"
                )))
            }
        };
        let Some(f) = f.strip_prefix(':') else {
            return Err(error(format!("f {f:?} is not a keyword")));
        };
        let value = edn::read_string(value_text)
            .map_err(|problem| error(format!("bad EDN value {value_text:?}: {problem}")))?;
        records.push(RawRecord {
            line: line_number,
            index: records.len() as u64,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value: edn_to_json(&value),
            unknown_output: false,
        });
    }
    Ok(records)
}
