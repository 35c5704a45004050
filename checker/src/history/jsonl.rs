//! Reader of our `history.jsonl` (DESIGN.md §3): one `HistoryRecord` per line.

use super::{HistoryRecord, InputError, RawRecord};

pub(crate) fn read_records(text: &str, source_name: &str) -> Result<Vec<RawRecord>, InputError> {
    let mut records = Vec::new();
    for (line_offset, line) in text.lines().enumerate() {
        let line_number = line_offset + 1;
        if line.trim().is_empty() {
            continue;
        }
        let record: HistoryRecord = serde_json::from_str(line).map_err(|error| InputError {
            file: source_name.to_string(),
            line: line_number,
            problem: format!("bad history record: {error}"),
        })?;
        records.push(RawRecord {
            line: line_number,
            index: record.index,
            process: record.process,
            kind: record.kind,
            f: record.f,
            key: record.key,
            value: record.value,
            unknown_output: false,
        });
    }
    Ok(records)
}
