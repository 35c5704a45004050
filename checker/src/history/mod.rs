//! Histories: the records as written by the harness (`history.jsonl`, DESIGN.md §3) and by
//! other tools (Jepsen/Knossos EDN, Porcupine's etcd and kv logs), and their pairing into
//! operations (an invoke with its completion).

mod edn;
mod edn_fast;
mod etcd_log;
mod independent;
mod jsonl;
mod name;
mod stream;
pub mod text;

pub use independent::Independent;
pub use name::Name;
pub(crate) use name::Names;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::deadline::{Deadline, Phase, TimeUp};
use serde_json::Value;

/// One line of our `history.jsonl`, exactly DESIGN.md §3. The workloads crate writes
/// histories with this type and every reader parses with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub index: u64,
    /// Nanoseconds since the run started (simulated time).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: RecordType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// Who issued a record: a client process, or the nemesis (ignored by the checker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(number) => serializer.serialize_u64(*number),
            Process::Nemesis => serializer.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match &value {
            Value::Number(number) => number.as_u64().map(Process::Client).ok_or_else(|| {
                serde::de::Error::custom(format!("process {number} is not a non-negative integer"))
            }),
            Value::String(name) if name == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!(
                "process must be a number or \"nemesis\", not {other}"
            ))),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(number) => write!(formatter, "{number}"),
            Process::Nemesis => write!(formatter, "nemesis"),
        }
    }
}

/// Jepsen's record types: `ok` happened, `fail` certainly did not happen, `info` unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// The input formats `minos check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decide by content.
    Auto,
    /// Our `history.jsonl`.
    Jsonl,
    /// Jepsen/Knossos EDN: a vector or a sequence of op maps.
    Edn,
    /// Jepsen console log lines as in Porcupine's etcd test data.
    EtcdLog,
    /// Porcupine's kv test data: one EDN map per line with `:key`.
    PorcupineKv,
}

impl Format {
    /// Parses a `--format` argument.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "auto" => Some(Format::Auto),
            "jsonl" | "json" => Some(Format::Jsonl),
            "edn" | "knossos" | "jepsen" => Some(Format::Edn),
            "etcd-log" | "etcd" => Some(Format::EtcdLog),
            "porcupine-kv" | "kv" => Some(Format::PorcupineKv),
            _ => None,
        }
    }

    /// The initial state this format defines for the objects of its histories, when it
    /// defines one: Porcupine's etcd logs record etcd keys, which start absent (null).
    pub fn default_init(self) -> Option<Value> {
        match self {
            Format::EtcdLog => Some(Value::Null),
            _ => None,
        }
    }

    /// The model this format's histories are of, when the format says: Porcupine's etcd logs
    /// are of a cas-register, its kv logs of a string key-value store.
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            Format::EtcdLog => Some("cas-register"),
            Format::PorcupineKv => Some("kv"),
            _ => None,
        }
    }

    /// The `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::EtcdLog => "etcd-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

/// A history that could not be read: `<file>:<line>: <problem>` (line 0 = the whole file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages may quote input: bounded here whatever a reader put in them.
        let problem = text::bound_problem(&self.problem);
        if self.line == 0 {
            write!(formatter, "{}: {problem}", self.file)
        } else {
            write!(formatter, "{}:{}: {problem}", self.file, self.line)
        }
    }
}

impl std::error::Error for InputError {}

/// What the completion of an operation said about its output.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// The operation returned this value.
    Known(Value),
    /// The operation completed but its output was not observed (e.g. a Knossos read of `nil`).
    Unknown,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It happened, between its invoke and its completion, with this output.
    Ok(Output),
    /// It certainly did not happen.
    Fail,
    /// It may have happened at any time after its invoke, or never (`info` or no completion).
    Info,
}

/// One client operation: an invoke paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// History index of the invoke record.
    pub index: u64,
    /// History index of the completion record, if any.
    pub completion_index: Option<u64>,
    pub process: u64,
    /// The process's name when the history named it (a string process in jsonl); `process`
    /// is then a number given to that name.
    pub process_name: Option<Name>,
    pub f: Name,
    pub key: Option<Name>,
    /// The value of the invoke record (the argument).
    pub invoke_value: Value,
    pub outcome: Outcome,
    /// The value of the completion record as written, for explanations, when the outcome
    /// does not hold it (see `completion_value()`); `None` for null, as most ops have (boxed:
    /// an op carries a pointer, not a whole value, for what few ops have).
    pub completion_value: Option<Box<Value>>,
    /// 1-based line of the invoke record in its file (0 when the format has no lines), so that
    /// a problem found later (e.g. by the model) still names where the op is.
    pub line: usize,
}

impl Operation {
    /// The value of the completion record as written (null if none).
    pub fn completion_value(&self) -> &Value {
        static NULL: Value = Value::Null;
        match (&self.outcome, &self.completion_value) {
            (Outcome::Ok(Output::Known(value)), _) => value,
            (_, Some(value)) => value,
            (_, None) => &NULL,
        }
    }

    /// The record type of the completion, as Jepsen names it.
    pub fn kind_name(&self) -> &'static str {
        match self.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// A position in real-time order: an operation's invoke or its completion, naming the op by
/// its position in `History::ops`. A u32, because a large history holds two events per op;
/// pairing refuses a history of 2^32 ops or more (history files are capped at 1 GiB, so only
/// one built in memory could get there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Call(u32),
    Return(u32),
}

impl Event {
    /// The position of the event's op in `History::ops`.
    #[inline]
    pub fn op(self) -> usize {
        match self {
            Event::Call(position) | Event::Return(position) => position as usize,
        }
    }

    #[inline]
    pub fn is_call(self) -> bool {
        matches!(self, Event::Call(_))
    }
}

/// An op's position as an event holds it, for a position below the op count of a paired
/// history (which pairing keeps below 2^32).
pub(crate) fn op_number(position: usize) -> u32 {
    u32::try_from(position).expect("pairing keeps op positions below 2^32")
}

/// A paired history: operations in invoke order and the real-time order of their events.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub source_name: String,
    /// Client operations, in the order of their invokes.
    pub ops: Vec<Operation>,
    /// Invokes and completions (of operations in `ops`) in real-time order. Operations
    /// without a completion have no `Return` event.
    pub events: Vec<Event>,
    /// The keys came from `[key value]` values (a `jepsen.independent` history, split).
    pub independent: bool,
    /// The format the history was read as.
    pub format: Option<Format>,
}

impl History {
    /// Number of client operations.
    pub fn ops_count(&self) -> usize {
        self.ops.len()
    }
}

/// A record as any of the readers produce it, before pairing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawRecord {
    /// 1-based line where the record starts, for messages.
    pub line: usize,
    pub index: u64,
    pub process: Process,
    /// The name of a named process (see `Operation::process_name`).
    pub process_name: Option<Name>,
    pub kind: RecordType,
    pub f: Name,
    pub key: Option<Name>,
    pub value: Value,
    /// The format says this completion's output was not observed.
    pub unknown_output: bool,
}

/// Reads and pairs a history file; a `jepsen.independent` EDN history is split by key.
pub fn read_file(path: &Path, format: Format) -> Result<History, InputError> {
    read_file_with(path, format, Independent::Auto)
}

/// As `read_file`, saying whether `[key value]` values of an EDN history are split by key.
pub fn read_file_with(
    path: &Path,
    format: Format,
    independent: Independent,
) -> Result<History, InputError> {
    read_file_until(path, format, independent, &Deadline::NONE).map_err(ReadError::into_input)
}

/// As `read_file_with`, giving up once `deadline` passes (reading and parsing look at the
/// clock as they go).
pub fn read_file_until(
    path: &Path,
    format: Format,
    independent: Independent,
    deadline: &Deadline,
) -> Result<History, ReadError> {
    // Kv logs and jsonl are read in pieces (see `stream`); `--independent` is for EDN only,
    // and the whole-file reader says so.
    let in_pieces = match (format, path.extension().and_then(|ext| ext.to_str())) {
        (Format::PorcupineKv | Format::Jsonl, _) | (Format::Auto, Some("jsonl")) => {
            independent != Independent::Yes
        }
        _ => false,
    };
    if in_pieces {
        let format = if format == Format::Auto {
            Format::Jsonl
        } else {
            format
        };
        if let Some(history) = stream::read(path, format, deadline)? {
            return Ok(history);
        }
        // The file has a problem (or a shape the pieces cannot follow): read whole below,
        // which names the problem exactly as it always has.
    }
    let bytes = read_bytes_until(path, deadline)?;
    deadline.check(Phase::Parsing)?;
    let text = utf8_text(bytes, path)?;
    // A `.jsonl` file is ours whatever its first line looks like: a malformed one then gets
    // the JSON reader's error, not the EDN reader's.
    let format = match (format, path.extension().and_then(|ext| ext.to_str())) {
        (Format::Auto, Some("jsonl")) => Format::Jsonl,
        (format, _) => format,
    };
    let source_name = path.display().to_string();
    let body = text::strip_bom(&text);
    let resolved = match format {
        Format::Auto => detect_format(body),
        other => other,
    };
    if resolved == Format::PorcupineKv && independent != Independent::Yes {
        // Paired as read: the records are never all held at once (for a large kv log they
        // took more memory than its ops). A problem pairing them is reported only once the
        // whole file parsed, as when reading first and pairing after: a parse error wins.
        let mut pairing = Pairing::new(&source_name, edn::records_expected(body));
        let mut pairing_problem = None;
        edn::read_records_into(body, &source_name, deadline, &mut |record| {
            if pairing_problem.is_none() {
                match pairing.push(record, deadline) {
                    Ok(()) => {}
                    Err(ReadError::TimeUp(time_up)) => return Err(ReadError::TimeUp(time_up)),
                    Err(problem) => pairing_problem = Some(problem),
                }
            }
            Ok(())
        })?;
        drop(text);
        if let Some(problem) = pairing_problem {
            return Err(problem);
        }
        deadline.check(Phase::Parsing)?;
        let mut history = pairing.history;
        history.format = Some(resolved);
        return Ok(history);
    }
    let (records, format, split) =
        read_records(&text, &source_name, format, independent, deadline)?;
    // The records own copies of what they need: the file's bytes go before pairing, so the
    // peak holds one of them, not both.
    drop(text);
    paired(records, &source_name, format, split, deadline)
}

/// A history that was not read: bad input, or the deadline passed first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    Input(InputError),
    TimeUp(TimeUp),
}

impl ReadError {
    /// The input error of a read without a deadline (which cannot run out of time).
    fn into_input(self) -> InputError {
        match self {
            ReadError::Input(error) => error,
            ReadError::TimeUp(_) => unreachable!("no deadline was given"),
        }
    }
}

impl From<InputError> for ReadError {
    fn from(error: InputError) -> ReadError {
        ReadError::Input(error)
    }
}

impl From<TimeUp> for ReadError {
    fn from(time_up: TimeUp) -> ReadError {
        ReadError::TimeUp(time_up)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Input(error) => error.fmt(formatter),
            ReadError::TimeUp(time_up) => time_up.fmt(formatter),
        }
    }
}

impl std::error::Error for ReadError {}

/// The bytes of a history file, refused when larger than `text::MAX_HISTORY_BYTES`.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, InputError> {
    read_bytes_until(path, &Deadline::NONE).map_err(ReadError::into_input)
}

/// Bytes read between two looks at the clock.
const READ_CHUNK_BYTES: u64 = 8 << 20;

/// As `read_bytes`, giving up once `deadline` passes.
pub fn read_bytes_until(path: &Path, deadline: &Deadline) -> Result<Vec<u8>, ReadError> {
    let source_name = path.display().to_string();
    let cannot_read = |error: std::io::Error| InputError {
        file: source_name.clone(),
        line: 0,
        problem: format!("cannot read: {error}"),
    };
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    // Sized once from the file's length (capped at the limit): growing by doubling copied a
    // large history several times and left up to half of its size unused.
    let expected = file.metadata().map_or(0, |metadata| metadata.len());
    let mut bytes = Vec::with_capacity(expected.min(text::MAX_HISTORY_BYTES + 1) as usize);
    // One byte more than the limit tells a file at the limit from a larger one.
    loop {
        deadline.check(Phase::Reading)?;
        let room = (text::MAX_HISTORY_BYTES + 1).saturating_sub(bytes.len() as u64);
        let chunk = room.min(READ_CHUNK_BYTES);
        if chunk == 0 {
            break;
        }
        let read =
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, chunk), &mut bytes)
                .map_err(cannot_read)?;
        if read == 0 {
            break;
        }
    }
    if bytes.len() as u64 > text::MAX_HISTORY_BYTES {
        return Err(InputError {
            file: source_name,
            line: 0,
            problem: format!(
                "larger than {} bytes, the most a history may hold: split it",
                text::MAX_HISTORY_BYTES
            ),
        }
        .into());
    }
    Ok(bytes)
}

/// The bytes of a history file as text; invalid UTF-8 is an error naming its line.
pub fn utf8_text(bytes: Vec<u8>, path: &Path) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|error| InputError {
        file: path.display().to_string(),
        line: 1 + bytecount_lines(&error.as_bytes()[..error.utf8_error().valid_up_to()]),
        problem: "not valid UTF-8".to_string(),
    })
}

fn bytecount_lines(bytes: &[u8]) -> usize {
    let valid = String::from_utf8_lossy(bytes);
    text::line_breaks(&valid, &valid)
}

/// Parses a history held in memory, in the given format (`Auto` decides by content); a
/// `jepsen.independent` EDN history is split by key.
pub fn parse_text(text: &str, source_name: &str, format: Format) -> Result<History, InputError> {
    parse_text_with(text, source_name, format, Independent::Auto)
}

/// As `parse_text`, saying whether `[key value]` values of an EDN history are split by key.
pub fn parse_text_with(
    text: &str,
    source_name: &str,
    format: Format,
    independent: Independent,
) -> Result<History, InputError> {
    parse_text_until(text, source_name, format, independent, &Deadline::NONE)
        .map_err(ReadError::into_input)
}

/// As `parse_text_with`, giving up once `deadline` passes.
pub fn parse_text_until(
    text: &str,
    source_name: &str,
    format: Format,
    independent: Independent,
    deadline: &Deadline,
) -> Result<History, ReadError> {
    let (records, format, split) = read_records(text, source_name, format, independent, deadline)?;
    paired(records, source_name, format, split, deadline)
}

/// The records of `text` in `format` (`Auto` decided by content), the format read, and
/// whether an EDN history was split by `[key value]` values.
fn read_records(
    text: &str,
    source_name: &str,
    format: Format,
    independent: Independent,
    deadline: &Deadline,
) -> Result<(Vec<RawRecord>, Format, bool), ReadError> {
    // A byte-order mark is not part of the first record.
    let text = text::strip_bom(text);
    let format = match format {
        Format::Auto => detect_format(text),
        other => other,
    };
    let mut records = match format {
        Format::Jsonl => jsonl::read_records(text, source_name, deadline)?,
        Format::Edn | Format::PorcupineKv => edn::read_records(text, source_name, deadline)?,
        Format::EtcdLog => etcd_log::read_records(text, source_name, deadline)?,
        Format::Auto => unreachable!("detect_format never returns Auto"),
    };
    deadline.check(Phase::Parsing)?;
    // Only Jepsen/Knossos EDN histories write keys into values; the other formats carry
    // keys of their own (or none).
    let split = match (format, independent) {
        (Format::Edn, mode) => independent::split(&mut records, mode, source_name)?,
        (_, Independent::Yes) => {
            return Err(InputError {
                file: source_name.to_string(),
                line: 0,
                problem: format!(
                    "--independent applies to Jepsen/Knossos EDN histories, not {} ones",
                    format.name()
                ),
            }
            .into())
        }
        _ => false,
    };
    Ok((records, format, split))
}

/// The history of `records` read as `format`.
fn paired(
    records: Vec<RawRecord>,
    source_name: &str,
    format: Format,
    split: bool,
    deadline: &Deadline,
) -> Result<History, ReadError> {
    deadline.check(Phase::Parsing)?;
    let mut history = pair(records, source_name, deadline)?;
    history.independent = split;
    history.format = Some(format);
    Ok(history)
}

/// Parses our `history.jsonl`.
pub fn parse_jsonl(text: &str, source_name: &str) -> Result<History, InputError> {
    parse_text(text, source_name, Format::Jsonl)
}

/// Decides the format from the first meaningful line.
pub fn detect_format(text: &str) -> Format {
    let first = text::lines(text::strip_bom(text))
        .map(|(_, line)| line.trim())
        .find(|line| !line.is_empty() && !line.starts_with(';'))
        .unwrap_or("");
    if first.starts_with('{') && first[1..].trim_start().starts_with('"') {
        Format::Jsonl
    } else if first.contains("jepsen.util") || first.starts_with("INFO") {
        Format::EtcdLog
    } else {
        // Knossos EDN and Porcupine kv logs are both sequences of EDN op maps.
        Format::Edn
    }
}

/// Pairs invokes with completions per process and orders the events.
fn pair(
    records: Vec<RawRecord>,
    source_name: &str,
    deadline: &Deadline,
) -> Result<History, ReadError> {
    let mut pairing = Pairing::new(source_name, records.len());
    for record in records {
        pairing.push(record, deadline)?;
    }
    Ok(pairing.history)
}

/// A completion's value as `Operation::completion_value` keeps it.
fn boxed(value: Value) -> Option<Box<Value>> {
    (!value.is_null()).then(|| Box::new(value))
}

fn pairing_error(source_name: &str, line: usize, problem: String) -> ReadError {
    ReadError::Input(InputError {
        file: source_name.to_string(),
        line,
        problem,
    })
}

/// The open invoke of each process, (op position, line): in a table for the small process
/// numbers histories use, in a map for the rest.
#[derive(Default)]
struct OpenInvokes {
    small: Vec<Option<(usize, usize)>>,
    large: BTreeMap<u64, (usize, usize)>,
}

/// Process numbers below this have a slot in `OpenInvokes::small`.
const SMALL_PROCESSES: u64 = 1 << 12;

impl OpenInvokes {
    fn get(&self, process: &u64) -> Option<&(usize, usize)> {
        if *process < SMALL_PROCESSES {
            self.small.get(*process as usize)?.as_ref()
        } else {
            self.large.get(process)
        }
    }

    fn insert(&mut self, process: u64, open: (usize, usize)) {
        if process < SMALL_PROCESSES {
            let slot = process as usize;
            if slot >= self.small.len() {
                self.small.resize(slot + 1, None);
            }
            self.small[slot] = Some(open);
        } else {
            self.large.insert(process, open);
        }
    }

    fn remove(&mut self, process: &u64) -> Option<(usize, usize)> {
        if *process < SMALL_PROCESSES {
            self.small.get_mut(*process as usize)?.take()
        } else {
            self.large.remove(process)
        }
    }
}

/// Pairing as records arrive, so that a reader can hand each record over as it reads it
/// instead of holding them all (see `read_file_until`).
struct Pairing {
    history: History,
    /// Open invoke per process: (op position, line of the invoke).
    open: OpenInvokes,
    /// Records pushed so far.
    pushed: usize,
}

impl Pairing {
    /// Ready for about `records` records.
    fn new(source_name: &str, records: usize) -> Pairing {
        Pairing {
            // Sized once: growing by doubling copied the ops of a large history many times.
            history: History {
                source_name: source_name.to_string(),
                ops: Vec::with_capacity(records.div_ceil(2)),
                events: Vec::with_capacity(records),
                ..History::default()
            },
            open: OpenInvokes::default(),
            pushed: 0,
        }
    }

    fn push(&mut self, record: RawRecord, deadline: &Deadline) -> Result<(), ReadError> {
        if self.pushed % crate::deadline::CHECK_EVERY == 0 {
            deadline.check(Phase::Parsing)?;
        }
        self.pushed += 1;
        let process = match record.process {
            Process::Nemesis => return Ok(()),
            Process::Client(process) => process,
        };
        match record.kind {
            RecordType::Invoke => {
                if let Some((op, line)) = self.open.get(&process) {
                    let pending = &self.history.ops[*op];
                    return Err(pairing_error(&self.history.source_name,
                        record.line,
                        format!(
                            "process {process} invokes {} while its {} invoked at line {line} (index {}) has not completed",
                            text::quote(&record.f), text::quote(&pending.f), pending.index
                        ),
                    ));
                }
                let position = self.history.ops.len();
                if u32::try_from(position).is_err() {
                    return Err(pairing_error(
                        &self.history.source_name,
                        record.line,
                        format!("more than {} operations: too many to check", u32::MAX),
                    ));
                }
                self.history.ops.push(Operation {
                    index: record.index,
                    completion_index: None,
                    process,
                    process_name: record.process_name,
                    f: record.f,
                    key: record.key,
                    invoke_value: record.value,
                    outcome: Outcome::Info,
                    completion_value: None,
                    line: record.line,
                });
                self.history.events.push(Event::Call(op_number(position)));
                self.open.insert(process, (position, record.line));
            }
            RecordType::Ok | RecordType::Fail | RecordType::Info => {
                let Some((position, _)) = self.open.remove(&process) else {
                    return Err(pairing_error(&self.history.source_name,
                        record.line,
                        format!(
                            "unmatched completion: process {process} completes {} (index {}) without a pending invoke",
                            text::quote(&record.f), record.index
                        ),
                    ));
                };
                let op = &mut self.history.ops[position];
                if op.f != record.f {
                    return Err(pairing_error(&self.history.source_name,
                        record.line,
                        format!(
                            "completion f {} of process {process} does not match its invoke f {} (index {})",
                            text::quote(&record.f), text::quote(&op.f), op.index
                        ),
                    ));
                }
                if record.key.is_some() && op.key.is_some() && record.key != op.key {
                    return Err(pairing_error(&self.history.source_name,
                        record.line,
                        format!(
                            "completion key {} of process {process} does not match its invoke key {}",
                            key_text(&record.key), key_text(&op.key)
                        ),
                    ));
                }
                op.completion_index = Some(record.index);
                // A known output is kept once, in the outcome (values of a kv history are most
                // of its bytes).
                op.outcome = match record.kind {
                    RecordType::Ok if record.unknown_output => {
                        op.completion_value = boxed(record.value);
                        Outcome::Ok(Output::Unknown)
                    }
                    RecordType::Ok => Outcome::Ok(Output::Known(record.value)),
                    RecordType::Fail => {
                        op.completion_value = boxed(record.value);
                        Outcome::Fail
                    }
                    _ => {
                        op.completion_value = boxed(record.value);
                        Outcome::Info
                    }
                };
                // An info completion is no real-time bound: the op may take effect later.
                if record.kind != RecordType::Info {
                    self.history.events.push(Event::Return(op_number(position)));
                }
            }
        }
        Ok(())
    }
}

/// A record's key for messages: quoted, or "(none)".
fn key_text(key: &Option<Name>) -> String {
    key.as_ref()
        .map_or_else(|| "(none)".to_string(), |key| text::quote(key))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_operation_stays_small() {
        // A 100k-op history holds this many bytes per op before any search starts: names are
        // thin pointers, rare values boxed.
        assert!(
            std::mem::size_of::<super::Operation>() <= 136,
            "{}",
            std::mem::size_of::<super::Operation>()
        );
    }

    use super::*;

    #[test]
    fn record_round_trips_as_design_says() {
        let line = r#"{"index":1,"time":3400000,"process":3,"type":"ok","f":"add","key":"k1","value":[5,12]}"#;
        let record: HistoryRecord = serde_json::from_str(line).unwrap();
        assert_eq!(record.process, Process::Client(3));
        assert_eq!(record.kind, RecordType::Ok);
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
        let nemesis = r#"{"index":7,"time":9,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[["n1"]]}}"#;
        let record: HistoryRecord = serde_json::from_str(nemesis).unwrap();
        assert_eq!(record.process, Process::Nemesis);
        assert_eq!(serde_json::to_string(&record).unwrap(), nemesis);
    }

    #[test]
    fn unmatched_completion_names_file_and_line() {
        let text =
            "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";
        let error = parse_jsonl(text, "h.jsonl").unwrap_err();
        assert_eq!(error.line, 1);
        assert!(
            error
                .to_string()
                .starts_with("h.jsonl:1: unmatched completion"),
            "{error}"
        );
    }

    /// A porcupine-kv file is paired as it is read: the same history as reading all records
    /// first, and a parse error still wins over an earlier pairing problem.
    #[test]
    fn kv_logs_paired_as_read_match_the_two_pass_reading() {
        let path = |name: &str| {
            std::env::temp_dir().join(format!("minos-kv-{}-{name}.txt", std::process::id()))
        };
        let good = "{:process 0, :type :invoke, :f :append, :key \"1\", :value \"x\"}\n\
                    {:process 1, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                    {:process 0, :type :ok, :f :append, :key \"1\", :value \"x\"}\n\
                    {:process 1, :type :ok, :f :get, :key \"1\", :value \"x\"}\n\
                    {:process 2, :type :invoke, :f :put, :key \"2\", :value \"y\"}\n";
        let file = path("good");
        std::fs::write(&file, good).unwrap();
        let streamed = read_file(&file, Format::PorcupineKv).unwrap();
        let two_pass = parse_text(good, &file.display().to_string(), Format::PorcupineKv).unwrap();
        assert_eq!(streamed.ops, two_pass.ops);
        assert_eq!(streamed.events, two_pass.events);
        assert_eq!(streamed.format, Some(Format::PorcupineKv));
        assert_eq!(streamed.ops.len(), 3);
        assert_eq!(
            streamed.ops[1].outcome,
            Outcome::Ok(Output::Known(Value::from("x")))
        );
        assert_eq!(streamed.ops[1].completion_value(), &Value::from("x"));
        // Line 1 completes what was never invoked; line 3 is not EDN: line 3 is reported.
        let bad = "{:process 5, :type :ok, :f :get, :key \"1\", :value \"\"}\n\
                   {:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                   {:process 0, :type :ok, :f :get, :key \"1\" :value}\n";
        let file = path("bad");
        std::fs::write(&file, bad).unwrap();
        let streamed = read_file(&file, Format::PorcupineKv).unwrap_err();
        let two_pass =
            parse_text(bad, &file.display().to_string(), Format::PorcupineKv).unwrap_err();
        assert_eq!(streamed, two_pass);
        assert_eq!(streamed.line, 3, "{streamed}");
        // Without the parse error, the pairing problem of line 1 is reported.
        let unmatched = &bad[..bad.find("{:process 0, :type :ok").unwrap()];
        std::fs::write(&file, unmatched).unwrap();
        let streamed = read_file(&file, Format::PorcupineKv).unwrap_err();
        assert_eq!(streamed.line, 1, "{streamed}");
        assert!(
            streamed.problem.starts_with("unmatched completion"),
            "{streamed}"
        );
        std::fs::remove_file(&file).unwrap();
        std::fs::remove_file(path("good")).unwrap();
    }

    #[test]
    fn detects_formats_by_content() {
        assert_eq!(detect_format("{\"index\":0}"), Format::Jsonl);
        assert_eq!(
            detect_format("INFO  jepsen.util - 4\t:invoke\t:read\tnil"),
            Format::EtcdLog
        );
        assert_eq!(detect_format("; comment\n[{:process 1}]"), Format::Edn);
        assert_eq!(detect_format("{:process 0, :type :invoke}"), Format::Edn);
    }
}
