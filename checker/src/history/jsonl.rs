//! Reader of our `history.jsonl` (DESIGN.md §3): one `HistoryRecord` per line.

use super::{HistoryRecord, InputError, RawRecord};

pub(crate) fn read_records(text: &str, source_name: &str) -> Result<Vec<RawRecord>, InputError> {
    let mut records = Vec::new();
    let mut previous: Option<(u64, u64)> = None;
    for (line_offset, line) in text.lines().enumerate() {
        let line_number = line_offset + 1;
        if line.trim().is_empty() {
            continue;
        }
        let record: HistoryRecord = serde_json::from_str(line).map_err(|error| InputError {
            file: source_name.to_string(),
            line: line_number,
            // Each record is one line, so serde's "at line 1" would only confuse: keep the column.
            problem: format!(
                "bad history record: {} (column {})",
                serde_problem(&error),
                error.column()
            ),
        })?;
        // DESIGN.md §3: records are in real-time order, indexes increasing.
        if let Some((previous_index, previous_time)) = previous {
            let problem = if record.index <= previous_index {
                Some(format!(
                    "index {} does not increase (the record before has index {previous_index})",
                    record.index
                ))
            } else if record.time < previous_time {
                Some(format!(
                    "time {} ns goes back before the record before ({previous_time} ns): records must be in real-time order",
                    record.time
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(InputError {
                    file: source_name.to_string(),
                    line: line_number,
                    problem,
                });
            }
        }
        previous = Some((record.index, record.time));
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

/// serde_json's message without its "at line L column C" suffix.
fn serde_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(position) => text[..position].to_string(),
        None => text,
    }
}
