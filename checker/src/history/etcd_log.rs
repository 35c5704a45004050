//! Reader of Jepsen console logs as in Porcupine's etcd test data:
//! `INFO  jepsen.util - <process> :<type> :<f> <value>` (tabs or spaces), values in EDN.
//! A record is one line (LF, CRLF or CR endings); text after its value makes it malformed,
//! so that two records run together are never read as one.

use clojure_reader::edn;

use super::edn::edn_to_json;
use super::text::{edn_too_deep, lines, quote, MAX_NESTING};
use super::{InputError, Names, Process, RawRecord, ReadError, RecordType};
use crate::deadline::{Deadline, Phase, CHECK_EVERY};

pub(crate) fn read_records(
    text: &str,
    source_name: &str,
    deadline: &Deadline,
) -> Result<Vec<RawRecord>, ReadError> {
    let mut records = Vec::new();
    let mut names = Names::default();
    for (line_number, line) in lines(text) {
        if line_number % CHECK_EVERY == 0 {
            deadline.check(Phase::Parsing)?;
        }
        let error = |problem: String| {
            ReadError::Input(InputError {
                file: source_name.to_string(),
                line: line_number,
                problem,
            })
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
                "expected `<process> :<type> :<f> <value>`, found {}",
                quote(rest)
            )));
        };
        let value_text = if remaining.is_empty() {
            "nil"
        } else {
            remaining.trim_end()
        };
        let process = match process {
            ":nemesis" | "nemesis" => Process::Nemesis,
            number => Process::Client(number.parse().map_err(|_| {
                error(format!(
                    "process {} is not a number or :nemesis",
                    quote(number)
                ))
            })?),
        };
        let kind = match kind {
            ":invoke" => RecordType::Invoke,
            ":ok" => RecordType::Ok,
            ":fail" => RecordType::Fail,
            ":info" => RecordType::Info,
            other => {
                return Err(error(format!(
                    "unknown type {} (expected :invoke, :ok, :fail or :info)",
                    quote(other)
                )))
            }
        };
        let Some(f) = f.strip_prefix(':') else {
            return Err(error(format!("f {} is not a keyword", quote(f))));
        };
        if edn_too_deep(value_text, 0).is_some() {
            return Err(error(format!(
                "value nests brackets deeper than {MAX_NESTING} levels"
            )));
        }
        let (value, after) = edn::read(value_text).map_err(|problem| {
            error(format!(
                "bad EDN value {}: {:?}",
                quote(value_text),
                problem.code
            ))
        })?;
        if !after.trim().is_empty() {
            return Err(error(format!(
                "unexpected text after the value: {} (one record per line)",
                quote(after.trim())
            )));
        }
        records.push(RawRecord {
            line: line_number,
            index: records.len() as u64,
            process,
            process_name: None,
            kind,
            f: names.get(f),
            key: None,
            value: edn_to_json(&value),
            unknown_output: false,
        });
    }
    Ok(records)
}
