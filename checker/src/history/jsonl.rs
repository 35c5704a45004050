//! Reader of `history.jsonl` (DESIGN.md §3): one JSON record per line (LF, CRLF or CR
//! endings). Besides our own records it reads what Jepsen's and Maelstrom's JSON histories
//! write: integer keys (read as their decimal text) and process names (strings other than
//! "nemesis", numbered after the largest numeric process, in order of first appearance).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::text::{bound_problem, lines, quote};
use super::{InputError, Name, Names, Process, RawRecord, ReadError, RecordType};
use crate::deadline::{Deadline, Phase, CHECK_EVERY};

/// One record as written, before its process and key are interpreted.
#[derive(Deserialize)]
struct JsonlRecord {
    index: u64,
    time: u64,
    process: Value,
    #[serde(rename = "type")]
    kind: RecordType,
    f: String,
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
}

/// A record's process before names are numbered.
enum ProcessField {
    Number(u64),
    Name(String),
    Nemesis,
}

pub(crate) fn read_records(
    text: &str,
    source_name: &str,
    deadline: &Deadline,
) -> Result<Vec<RawRecord>, ReadError> {
    let mut records = Vec::new();
    let mut processes = Vec::new();
    let mut reader = LineReader::new(source_name);
    for (line_number, line) in lines(text) {
        if line_number % CHECK_EVERY == 0 {
            deadline.check(Phase::Parsing)?;
        }
        if let Some((record, process)) = reader.read_line(line_number, line)? {
            processes.push(process);
            records.push(record);
        }
    }
    number_processes(&mut records, processes, source_name)?;
    Ok(records)
}

/// The jsonl reader over a history given in consecutive pieces, each ending just after a line
/// feed, handing each record to `sink` as it is read. Named processes are numbered only once
/// every record is read (after the largest numeric one), so a piece that names one is a problem
/// here: the caller then reads the file whole (see `stream`). Given the whole text as one
/// piece it reads the records `read_records` reads, for histories whose processes are numbers.
pub(crate) struct JsonlStream<'n> {
    reader: LineReader<'n>,
    /// Lines of the pieces read so far.
    lines_before: usize,
}

impl<'n> JsonlStream<'n> {
    pub(crate) fn new(source_name: &'n str) -> JsonlStream<'n> {
        JsonlStream {
            reader: LineReader::new(source_name),
            lines_before: 0,
        }
    }

    pub(crate) fn feed(
        &mut self,
        text: &str,
        deadline: &Deadline,
        sink: &mut dyn FnMut(RawRecord) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut last_line = 0;
        for (number, line) in lines(text) {
            last_line = number;
            let line_number = self.lines_before + number;
            if line_number % CHECK_EVERY == 0 {
                deadline.check(Phase::Parsing)?;
            }
            let Some((mut record, process)) = self.reader.read_line(line_number, line)? else {
                continue;
            };
            record.process = match process {
                ProcessField::Number(number) => Process::Client(number),
                ProcessField::Nemesis => Process::Nemesis,
                ProcessField::Name(_) => {
                    return Err(ReadError::Input(InputError {
                        file: self.reader.source_name.to_string(),
                        line: line_number,
                        problem: "a named process is numbered only once the whole file is read"
                            .to_string(),
                    }))
                }
            };
            sink(record)?;
        }
        self.lines_before += last_line;
        Ok(())
    }
}

/// Reads one line at a time, keeping what the order checks and names need between lines.
struct LineReader<'n> {
    source_name: &'n str,
    previous: Option<(u64, u64)>,
    names: Names,
}

impl<'n> LineReader<'n> {
    fn new(source_name: &'n str) -> LineReader<'n> {
        LineReader {
            source_name,
            previous: None,
            names: Names::default(),
        }
    }

    /// The record of one line and its process as written (`None` for a blank line); its
    /// `process` is left for the caller to number.
    fn read_line(
        &mut self,
        line_number: usize,
        line: &str,
    ) -> Result<Option<(RawRecord, ProcessField)>, ReadError> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let source_name = self.source_name;
        let names = &mut self.names;
        let previous = &mut self.previous;
        let error = |problem: String| {
            ReadError::Input(InputError {
                file: source_name.to_string(),
                line: line_number,
                problem,
            })
        };
        let record: JsonlRecord = serde_json::from_str(line).map_err(|problem| {
            // Each record is one line, so serde's "at line 1" would only confuse: keep the column.
            error(format!(
                "bad history record: {} (column {})",
                bound_problem(&serde_problem(&problem)),
                problem.column()
            ))
        })?;
        let process = match &record.process {
            Value::Number(number) => ProcessField::Number(number.as_u64().ok_or_else(|| {
                error(format!(
                    "process {number} is not a non-negative integer or a name"
                ))
            })?),
            Value::String(name) if name == "nemesis" || name == ":nemesis" => ProcessField::Nemesis,
            Value::String(name) if !name.is_empty() => ProcessField::Name(name.clone()),
            other => {
                return Err(error(format!(
                    "process must be a number, a name or \"nemesis\", not {}",
                    quote(&other.to_string())
                )))
            }
        };
        let key = match &record.key {
            Value::Null => None,
            Value::String(key) => Some(names.get(key)),
            Value::Number(number) if number.is_i64() || number.is_u64() => {
                Some(names.get(&number.to_string()))
            }
            other => {
                return Err(error(format!(
                    "key must be a string or an integer, not {}",
                    quote(&other.to_string())
                )))
            }
        };
        // DESIGN.md §3: records are in real-time order, indexes increasing.
        if let Some((previous_index, previous_time)) = *previous {
            if record.index <= previous_index {
                return Err(error(format!(
                    "index {} does not increase (the record before has index {previous_index})",
                    record.index
                )));
            }
            if record.time < previous_time {
                return Err(error(format!(
                    "time {} ns goes back before the record before ({previous_time} ns): records must be in real-time order",
                    record.time
                )));
            }
        }
        *previous = Some((record.index, record.time));
        Ok(Some((
            RawRecord {
                line: line_number,
                index: record.index,
                process: Process::Nemesis,
                process_name: None,
                kind: record.kind,
                f: names.get(&record.f),
                key,
                value: record.value,
                unknown_output: false,
            },
            process,
        )))
    }
}

/// Gives named processes numbers after the largest numeric one, in order of first appearance,
/// so that no name shares a number with a numbered process.
fn number_processes(
    records: &mut [RawRecord],
    processes: Vec<ProcessField>,
    source_name: &str,
) -> Result<(), InputError> {
    let largest = processes
        .iter()
        .filter_map(|process| match process {
            ProcessField::Number(number) => Some(*number),
            _ => None,
        })
        .max();
    let mut next = largest.map_or(Some(0), |largest| largest.checked_add(1));
    let mut numbers: BTreeMap<String, u64> = BTreeMap::new();
    for (record, process) in records.iter_mut().zip(processes) {
        match process {
            ProcessField::Number(number) => record.process = Process::Client(number),
            ProcessField::Nemesis => record.process = Process::Nemesis,
            ProcessField::Name(name) => {
                let number = match numbers.get(&name) {
                    Some(&number) => number,
                    None => {
                        let Some(number) = next else {
                            return Err(InputError {
                                file: source_name.to_string(),
                                line: record.line,
                                problem: "no process number is left for named processes (a numeric process is 2^64-1)".to_string(),
                            });
                        };
                        next = number.checked_add(1);
                        numbers.insert(name.clone(), number);
                        number
                    }
                };
                record.process = Process::Client(number);
                record.process_name = Some(Name::from(name));
            }
        }
    }
    Ok(())
}

/// serde_json's message without its "at line L column C" suffix.
fn serde_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(position) => text[..position].to_string(),
        None => text,
    }
}
