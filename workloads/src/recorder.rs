//! The history recorder: appends client and nemesis records in real-time (simulated) order,
//! keeps Jepsen's process rules, and renders history.jsonl and history.csv.

use std::collections::BTreeMap;

use minos_checker::history::{HistoryRecord, Process, RecordType};
use serde_json::Value;

/// The invoke of an op that has not completed yet.
#[derive(Clone, Debug)]
struct Pending {
    f: String,
    key: Option<String>,
    value: Value,
}

#[derive(Debug, Default)]
pub struct Recorder {
    records: Vec<HistoryRecord>,
    pending: BTreeMap<u64, Pending>,
    /// Processes that ended in `info`: they must never invoke again.
    retired: std::collections::BTreeSet<u64>,
    last_time_ns: u64,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    fn push(
        &mut self,
        time_ns: u64,
        process: Process,
        kind: RecordType,
        f: &str,
        key: Option<String>,
        value: Value,
    ) {
        // Records arrive in execution order; simulated time never goes back.
        let time_ns = time_ns.max(self.last_time_ns);
        self.last_time_ns = time_ns;
        let index = self.records.len() as u64;
        self.records.push(HistoryRecord {
            index,
            time: time_ns,
            process,
            kind,
            f: f.to_string(),
            key,
            value,
        });
    }

    pub fn invoke(&mut self, time_ns: u64, process: u64, f: &str, key: &str, value: Value) {
        assert!(
            !self.pending.contains_key(&process),
            "process {process} invoked twice without completing"
        );
        assert!(
            !self.retired.contains(&process),
            "process {process} invoked after an info"
        );
        self.pending.insert(
            process,
            Pending {
                f: f.to_string(),
                key: Some(key.to_string()),
                value: value.clone(),
            },
        );
        self.push(
            time_ns,
            Process::Client(process),
            RecordType::Invoke,
            f,
            Some(key.to_string()),
            value,
        );
    }

    /// Completes the pending op of `process`; `value` is the completion's value.
    pub fn complete(&mut self, time_ns: u64, process: u64, kind: RecordType, value: Value) {
        assert!(
            kind != RecordType::Invoke,
            "a completion cannot be an invoke"
        );
        let pending = self
            .pending
            .remove(&process)
            .unwrap_or_else(|| panic!("process {process} completed with no pending op"));
        if kind == RecordType::Info {
            self.retired.insert(process);
        }
        self.push(
            time_ns,
            Process::Client(process),
            kind,
            &pending.f,
            pending.key,
            value,
        );
    }

    pub fn nemesis(&mut self, time_ns: u64, f: &str, value: Value) {
        self.push(time_ns, Process::Nemesis, RecordType::Info, f, None, value);
    }

    /// Ends every op still in flight as `info` at `time_ns` (the run is over; their outcome
    /// is unknown).
    pub fn close(&mut self, time_ns: u64) {
        let processes: Vec<u64> = self.pending.keys().copied().collect();
        for process in processes {
            let value = self.pending[&process].value.clone();
            self.complete(time_ns, process, RecordType::Info, value);
        }
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn records(&self) -> &[HistoryRecord] {
        &self.records
    }

    pub fn into_records(self) -> Vec<HistoryRecord> {
        self.records
    }
}

/// history.jsonl: one record per line.
pub fn to_jsonl(records: &[HistoryRecord]) -> String {
    let mut text = String::with_capacity(records.len() * 96);
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("a history record always serializes"));
        text.push('\n');
    }
    text
}

/// history.csv: the same records as a table (value as compact JSON).
pub fn to_csv(records: &[HistoryRecord]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(records.len() * 64));
    writer.write_record(["index", "time_ns", "process", "type", "f", "key", "value"])?;
    for record in records {
        let kind = match record.kind {
            RecordType::Invoke => "invoke",
            RecordType::Ok => "ok",
            RecordType::Fail => "fail",
            RecordType::Info => "info",
        };
        writer.write_record([
            record.index.to_string(),
            record.time.to_string(),
            record.process.to_string(),
            kind.to_string(),
            record.f.clone(),
            record.key.clone().unwrap_or_default(),
            record.value.to_string(),
        ])?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_indexed_in_order_and_close_ends_pending_ops_as_info() {
        let mut recorder = Recorder::new();
        recorder.invoke(10, 0, "add", "k1", json!(5));
        recorder.invoke(12, 1, "read", "k1", Value::Null);
        recorder.complete(20, 0, RecordType::Ok, json!([5, 5]));
        recorder.nemesis(25, "start-kill", json!({"targets": ["n1"]}));
        recorder.close(30);
        let records = recorder.into_records();
        assert_eq!(records.len(), 5);
        assert!(records.iter().enumerate().all(|(i, r)| r.index == i as u64));
        assert_eq!(records[4].kind, RecordType::Info);
        assert_eq!(records[4].process, Process::Client(1));
        let text = to_jsonl(&records);
        assert!(text.lines().next().unwrap().starts_with(r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"add","key":"k1","value":5}"#), "{text}");
        let parsed = minos_checker::history::parse_jsonl(&text, "test").unwrap();
        assert_eq!(parsed.ops_count(), 2);
        let csv = String::from_utf8(to_csv(&records).unwrap()).unwrap();
        assert!(csv.contains("3,25,nemesis,info,start-kill,,"), "{csv}");
    }

    #[test]
    #[should_panic(expected = "after an info")]
    fn a_process_that_ended_in_info_never_invokes_again() {
        let mut recorder = Recorder::new();
        recorder.invoke(1, 0, "read", "k1", Value::Null);
        recorder.complete(2, 0, RecordType::Info, Value::Null);
        recorder.invoke(3, 0, "read", "k1", Value::Null);
    }
}
