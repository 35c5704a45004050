//! Reader of Jepsen/Knossos EDN histories (a vector, list or bare sequence of op maps, with
//! `;` comments) and of Porcupine's kv logs (one op map per line, with `:key`).
//! Parsing is done by the `clojure-reader` crate; this module only walks the top level so
//! that every op keeps its line number.

use clojure_reader::edn::{self, Edn};
use serde_json::{Map, Value};

use super::edn_fast::read_op;
use super::text::{edn_too_deep_until, excerpt, line_breaks, MAX_NESTING};
use super::{InputError, Names, Process, RawRecord, ReadError, RecordType};
use crate::deadline::{Deadline, Phase, CHECK_EVERY};

/// Converts an EDN value to JSON: keywords, symbols and chars become strings, sets and lists
/// become arrays, map keys are printed.
pub(crate) fn edn_to_json(value: &Edn) -> Value {
    match value {
        Edn::Nil => Value::Null,
        Edn::Bool(flag) => Value::Bool(*flag),
        Edn::Int(number) => Value::from(*number),
        Edn::Double(number) => {
            serde_json::Number::from_f64(number.0).map_or(Value::Null, Value::Number)
        }
        Edn::Rational((numerator, denominator)) => {
            Value::String(format!("{numerator}/{denominator}"))
        }
        Edn::Key(name) | Edn::Symbol(name) | Edn::Str(name) => Value::String(name.to_string()),
        Edn::Char(character) => Value::String(character.to_string()),
        Edn::Vector(items) | Edn::List(items) => {
            Value::Array(items.iter().map(edn_to_json).collect())
        }
        Edn::Set(items) => Value::Array(items.iter().map(edn_to_json).collect()),
        Edn::Map(entries) => {
            let mut object = Map::new();
            for (key, item) in entries {
                let key = match edn_to_json(key) {
                    Value::String(name) => name,
                    other => other.to_string(),
                };
                object.insert(key, edn_to_json(item));
            }
            Value::Object(object)
        }
        Edn::Tagged(_, inner) => edn_to_json(inner),
        other => Value::String(format!("{other:?}")),
    }
}

/// Cursor over the text that keeps the current line. Lines are counted when asked for
/// (`line`), over everything consumed since the last time, so that a history of one-line
/// records is counted once per record rather than once per piece consumed.
struct Cursor<'t> {
    rest: &'t str,
    /// The line at the start of `counted`.
    line: usize,
    /// The text from where lines were last counted (`rest` is a suffix of it).
    counted: &'t str,
}

impl<'t> Cursor<'t> {
    /// Skips whitespace, commas and `;` comments.
    fn skip_blank(&mut self) {
        loop {
            // ASCII blanks by bytes first (the common case), then any Unicode whitespace.
            let ascii = self
                .rest
                .bytes()
                .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b','))
                .unwrap_or(self.rest.len());
            let trimmed =
                self.rest[ascii..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            self.advance_to(trimmed);
            if self.rest.starts_with(';') {
                let end = self.rest.find(['\n', '\r']).unwrap_or(self.rest.len());
                let after = &self.rest[end..];
                self.advance_to(after);
            } else {
                return;
            }
        }
    }

    fn advance_to(&mut self, after: &'t str) {
        self.rest = after;
    }

    /// The 1-based line where `rest` starts.
    fn line(&mut self) -> usize {
        let consumed = &self.counted[..self.counted.len() - self.rest.len()];
        if !consumed.is_empty() {
            self.line += line_breaks(consumed, self.counted);
            self.counted = self.rest;
        }
        self.line
    }
}

pub(crate) fn read_records(
    text: &str,
    source_name: &str,
    deadline: &Deadline,
) -> Result<Vec<RawRecord>, ReadError> {
    let mut records = Vec::with_capacity(records_expected(text));
    read_records_into(text, source_name, deadline, &mut |record| {
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}

/// About how many records `text` holds: Porcupine's kv logs and most EDN histories hold one
/// op a line (bounded by the shortest op map), so that what holds them is sized once.
pub(crate) fn records_expected(text: &str) -> usize {
    let lines = super::text::count_byte(text.as_bytes(), b'\n') + 1;
    lines.min(text.len() / 24)
}

/// As `read_records`, handing each record to `sink` as it is read; an error of `sink` stops
/// the reading.
pub(crate) fn read_records_into(
    text: &str,
    source_name: &str,
    deadline: &Deadline,
    sink: &mut dyn FnMut(RawRecord) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    RecordStream::new(source_name)
        .feed(text, true, deadline, sink)
        .map(|_| ())
}

/// The EDN reader over a history given in consecutive pieces, so that a large file need not be
/// held whole: an op a piece ends inside of is left for the next piece (see `feed`), and what
/// carries from one piece to the next is the line, the record count, the names met and whether
/// the history is wrapped in a vector or list. Given the whole text as one last piece it is
/// exactly the whole-text reader, errors and their lines included.
pub(crate) struct RecordStream<'n> {
    source_name: &'n str,
    /// The line the next piece starts on.
    line: usize,
    records: usize,
    names: Names,
    /// The history's opening bracket was met (or its first op, when it has none).
    opened: bool,
    closing: Option<char>,
    /// The closing bracket was met: only blanks may follow.
    closed: bool,
}

impl<'n> RecordStream<'n> {
    pub(crate) fn new(source_name: &'n str) -> RecordStream<'n> {
        RecordStream {
            source_name,
            line: 1,
            records: 0,
            names: Names::default(),
            opened: false,
            closing: None,
            closed: false,
        }
    }

    /// Reads the records of `text`, the next piece, and answers how many of its bytes it
    /// consumed. Unless `last` (no piece follows), an op that the piece ends before it closes
    /// is left for the next piece, which must begin with the bytes not consumed.
    pub(crate) fn feed(
        &mut self,
        text: &str,
        last: bool,
        deadline: &Deadline,
        sink: &mut dyn FnMut(RawRecord) -> Result<(), ReadError>,
    ) -> Result<usize, ReadError> {
        let mut cursor = Cursor {
            rest: text,
            line: self.line,
            counted: text,
        };
        self.read(&mut cursor, last, deadline, sink)?;
        let consumed = text.len() - cursor.rest.len();
        self.line = cursor.line();
        Ok(consumed)
    }

    fn read(
        &mut self,
        cursor: &mut Cursor<'_>,
        last: bool,
        deadline: &Deadline,
        sink: &mut dyn FnMut(RawRecord) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let source_name = self.source_name;
        let error = |line: usize, problem: String| {
            ReadError::Input(InputError {
                file: source_name.to_string(),
                line,
                problem,
            })
        };
        // The nesting limit is checked before the general parser reads anything (it recurses):
        // over the rest of the piece, the first time an op needs that parser or the file does
        // not open like a history. The fast path bounds its own nesting, so a piece it reads
        // whole is never scanned twice.
        let mut scanned = false;
        let mut scan_rest = |cursor: &mut Cursor, depth: usize| -> Result<(), ReadError> {
            if scanned {
                return Ok(());
            }
            scanned = true;
            match edn_too_deep_until(cursor.rest, depth, deadline)? {
                Some(relative) => Err(error(
                    cursor.line() + relative - 1,
                    format!("brackets nest deeper than {MAX_NESTING} levels"),
                )),
                None => Ok(()),
            }
        };
        cursor.skip_blank();
        if self.closed {
            if !cursor.rest.is_empty() {
                scan_rest(cursor, 0)?;
                return Err(error(
                    cursor.line(),
                    "unexpected text after the history".to_string(),
                ));
            }
            return Ok(());
        }
        if !self.opened && !cursor.rest.is_empty() {
            self.opened = true;
            self.closing = if cursor.rest.starts_with('[') {
                Some(']')
            } else if cursor.rest.starts_with('(') {
                Some(')')
            } else {
                None
            };
            if self.closing.is_some() {
                let after = &cursor.rest[1..];
                cursor.advance_to(after);
            }
        }
        let closing = self.closing;
        let depth = usize::from(closing.is_some());
        loop {
            cursor.skip_blank();
            match (cursor.rest.chars().next(), closing) {
                (None, _) if !last => break,
                (None, None) => break,
                (None, Some(close)) => {
                    return Err(error(
                        cursor.line(),
                        format!("unexpected end of file: missing closing {close:?}"),
                    ));
                }
                (Some(next), Some(close)) if next == close => {
                    let after = &cursor.rest[1..];
                    cursor.advance_to(after);
                    self.closed = true;
                    cursor.skip_blank();
                    if !cursor.rest.is_empty() {
                        scan_rest(cursor, 0)?;
                        return Err(error(
                            cursor.line(),
                            "unexpected text after the history".to_string(),
                        ));
                    }
                    break;
                }
                _ => {}
            }
            if self.records % CHECK_EVERY == 0 {
                deadline.check(Phase::Parsing)?;
            }
            let line = cursor.line();
            let position = self.records as u64;
            self.records += 1;
            if let Some((record, used)) = read_op(cursor.rest, line, position, &mut self.names) {
                let after = &cursor.rest[used..];
                cursor.advance_to(after);
                sink(record)?;
                continue;
            }
            scan_rest(cursor, depth)?;
            let general = read_general(cursor.rest, line, position, &mut self.names);
            if let Err(GeneralProblem::Edn(problem)) = &general {
                // Ran out at the piece's end, not a map closed with a key missing its value
                // (which the parser also calls an unexpected end).
                let at_end = problem.ptr.is_none_or(|ptr| ptr + 1 >= cursor.rest.len());
                if !last && at_end && problem.code == clojure_reader::error::Code::UnexpectedEOF {
                    // The piece ends inside this op: the next piece starts with it.
                    self.records -= 1;
                    return Ok(());
                }
            }
            let (record, after) = general.map_err(|problem| {
                let (line, problem) = match problem {
                    GeneralProblem::Edn(problem)
                        if problem.code == clojure_reader::error::Code::UnexpectedEOF =>
                    {
                        // Point at the op that was never closed, not at the end of the file.
                        (
                            line,
                            "bad EDN: this op is not closed before the end of the file".to_string(),
                        )
                    }
                    GeneralProblem::Edn(problem) => {
                        let problem_line =
                            problem.line.map_or(line, |relative| line + relative - 1);
                        let column = problem
                            .column
                            .map_or(String::new(), |column| format!(" (column {column})"));
                        (problem_line, format!("bad EDN: {:?}{column}", problem.code))
                    }
                    GeneralProblem::Record(problem) => (line, problem),
                };
                error(line, problem)
            })?;
            cursor.advance_to(after);
            sink(record)?;
        }
        Ok(())
    }
}

/// Why the general parser could not read an op.
pub(crate) enum GeneralProblem {
    Edn(clojure_reader::error::Error),
    Record(String),
}

impl std::fmt::Display for GeneralProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GeneralProblem::Edn(problem) => write!(formatter, "{:?}", problem.code),
            GeneralProblem::Record(problem) => write!(formatter, "{problem}"),
        }
    }
}

/// Reads the op at the start of `text` with `clojure_reader`: the record and the text after it.
pub(crate) fn read_general<'t>(
    text: &'t str,
    line: usize,
    position: u64,
    names: &mut Names,
) -> Result<(RawRecord, &'t str), GeneralProblem> {
    let (value, after) = edn::read(text).map_err(GeneralProblem::Edn)?;
    let record = record_from_map(&value, line, position, names).map_err(GeneralProblem::Record)?;
    Ok((record, after))
}

fn record_from_map(
    value: &Edn,
    line: usize,
    position: u64,
    names: &mut Names,
) -> Result<RawRecord, String> {
    let Edn::Map(entries) = value else {
        return Err(format!(
            "expected an op map {{:process .. :type .. :f ..}}, found {}",
            excerpt(&value.to_string())
        ));
    };
    let field = |name: &'static str| entries.get(&Edn::Key(name.into()));
    let process = match field("process") {
        Some(Edn::Int(number)) if *number >= 0 => Process::Client(*number as u64),
        Some(Edn::Key(name)) if name == "nemesis" => Process::Nemesis,
        Some(other) => {
            return Err(format!(
                "process {} is not a non-negative integer or :nemesis",
                excerpt(&other.to_string())
            ))
        }
        None => return Err("op has no :process".to_string()),
    };
    let kind = match field("type") {
        Some(Edn::Key(name)) => match name.as_ref() {
            "invoke" => RecordType::Invoke,
            "ok" => RecordType::Ok,
            "fail" => RecordType::Fail,
            "info" => RecordType::Info,
            other => {
                return Err(format!(
                    "unknown type :{} (expected :invoke, :ok, :fail or :info)",
                    excerpt(other)
                ))
            }
        },
        Some(other) => {
            return Err(format!(
                "unknown type {} (expected :invoke, :ok, :fail or :info)",
                excerpt(&other.to_string())
            ))
        }
        None => return Err("op has no :type".to_string()),
    };
    let f = match field("f") {
        Some(Edn::Key(name) | Edn::Str(name) | Edn::Symbol(name)) => names.get(name),
        Some(other) => {
            return Err(format!(
                ":f {} is not a keyword",
                excerpt(&other.to_string())
            ))
        }
        None if process == Process::Nemesis => names.get(""),
        None => return Err("op has no :f".to_string()),
    };
    let key = match field("key") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(name) | Edn::Key(name) | Edn::Symbol(name)) => Some(names.get(name)),
        Some(other) => Some(names.get(&other.to_string())),
    };
    let index = match field("index") {
        Some(Edn::Int(number)) if *number >= 0 => *number as u64,
        _ => position,
    };
    let nil = Edn::Nil;
    let value = field("value").unwrap_or(&nil);
    // Knossos' register models read `nil` as "the value was not observed".
    let unknown_output = kind == RecordType::Ok && f == "read" && matches!(value, Edn::Nil);
    Ok(RawRecord {
        line,
        index,
        process,
        process_name: None,
        kind,
        f,
        key,
        value: edn_to_json(value),
        unknown_output,
    })
}
