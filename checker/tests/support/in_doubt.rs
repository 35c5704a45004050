//! A `minos run`-like counter history on one key with many in-doubt adds (client timeouts
//! during faults): shared by the in-doubt test and the benchmark.

// The benchmark uses only part of it.
#![allow(dead_code)]

use minos_checker::history::{HistoryRecord, Process, RecordType};
use serde_json::{json, Value};

/// How the generated history ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ending {
    /// Every op takes effect between its invoke and completion (in-doubt adds: at some time
    /// after their invoke, possibly after the client gave up, or never): linearizable.
    Valid,
    /// As `Valid`, then one last read returns the total from before an ok add that completed
    /// before the read was invoked (a stale read): not linearizable.
    StaleRead,
}

/// `clients` concurrent clients on key "k0" doing add (deltas 1..=5; ok results carry
/// [delta, total]) and read until `in_doubt_count` adds have ended in info. An in-doubt add
/// takes effect with probability 1/2, at a random later step.
pub fn counter_history(in_doubt_count: usize, clients: u64, seed: u64, ending: Ending) -> String {
    let mut rng = seed;
    let mut next = move |bound: u64| minos_checker::fxhash::splitmix64(&mut rng) % bound;
    let mut total = 0i64;
    let mut records: Vec<HistoryRecord> = Vec::new();
    let push = |records: &mut Vec<HistoryRecord>, process: u64, kind, f: &str, value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64 * 1_000_000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some("k0".to_string()),
            value,
        });
    };
    // Per client: (process, f, delta, result once applied).
    type Pending = Option<(u64, &'static str, i64, Option<Value>)>;
    let mut pending: Vec<Pending> = (0..clients).map(|_| None).collect();
    let mut processes: Vec<u64> = (0..clients).collect();
    let mut next_process = clients;
    // Deltas of in-doubt adds that will still take effect.
    let mut late_effects: Vec<i64> = Vec::new();
    let mut in_doubt = 0;
    while in_doubt < in_doubt_count || pending.iter().any(Option::is_some) {
        if !late_effects.is_empty() && next(4) == 0 {
            let effect = late_effects.swap_remove(next(late_effects.len() as u64) as usize);
            total += effect;
        }
        let slot = next(clients) as usize;
        match pending[slot].take() {
            None if in_doubt < in_doubt_count => {
                let (f, delta) = if next(3) == 0 {
                    ("read", 0)
                } else {
                    ("add", 1 + next(5) as i64)
                };
                let value = if f == "add" {
                    json!(delta)
                } else {
                    Value::Null
                };
                push(&mut records, processes[slot], RecordType::Invoke, f, value);
                pending[slot] = Some((processes[slot], f, delta, None));
            }
            None => {}
            Some((process, "add", delta, None)) if in_doubt < in_doubt_count && next(3) == 0 => {
                // Times out: the add may still happen, later.
                push(&mut records, process, RecordType::Info, "add", json!(delta));
                if next(2) == 0 {
                    late_effects.push(delta);
                }
                processes[slot] = next_process;
                next_process += 1;
                in_doubt += 1;
            }
            Some((process, f, delta, None)) => {
                let result = if f == "add" {
                    total += delta;
                    json!([delta, total])
                } else {
                    json!(total)
                };
                pending[slot] = Some((process, f, delta, Some(result)));
            }
            Some((process, f, _, Some(result))) => {
                push(&mut records, process, RecordType::Ok, f, result);
            }
        }
    }
    if ending == Ending::StaleRead {
        // Every add before the read completed (or timed out); the read returns less than the
        // total that the last ok add reported, and totals only grow.
        let stale = records
            .iter()
            .rev()
            .find_map(|record| match (&record.kind, record.f.as_str()) {
                (RecordType::Ok, "add") => record.value[1].as_i64(),
                _ => None,
            })
            .expect("an ok add")
            - 1;
        push(
            &mut records,
            next_process,
            RecordType::Invoke,
            "read",
            Value::Null,
        );
        push(
            &mut records,
            next_process,
            RecordType::Ok,
            "read",
            json!(stale),
        );
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

/// A counter key through a power loss of every node, as `minos run` records it: `clients`
/// clients add (deltas 1..=5, ok results carry [delta, total]) and read; during the outage
/// every op times out (`outage_adds` in-doubt adds, in-doubt reads), and when it ends each
/// in-doubt add has taken effect or not (`applied_percent`); then `after_ops` ops complete
/// normally. With `stale_read` the last op is a read of a total from before the last add.
pub fn power_loss_history(
    outage_adds: usize,
    after_ops: usize,
    clients: u64,
    applied_percent: u64,
    seed: u64,
    stale_read: bool,
) -> String {
    let mut run = Run {
        rng: seed,
        records: Vec::new(),
        total: 0,
        process: 0,
    };
    run.normal_phase(50, clients);
    let mut in_doubt = 0;
    while in_doubt < outage_adds {
        run.process += 1;
        let (f, value) = if run.next(2) == 0 {
            ("read", Value::Null)
        } else {
            in_doubt += 1;
            let delta = 1 + run.next(5) as i64;
            if run.next(100) < applied_percent {
                run.total += delta;
            }
            ("add", json!(delta))
        };
        run.push(run.process, RecordType::Invoke, f, value.clone());
        run.push(run.process, RecordType::Info, f, value);
    }
    run.normal_phase(after_ops, clients);
    if stale_read {
        let (process, stale) = (run.process + 1, run.total - 1);
        run.push(process, RecordType::Invoke, "read", Value::Null);
        run.push(process, RecordType::Ok, "read", json!(stale));
    }
    run.records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

/// A history being generated, for `power_loss_history`.
struct Run {
    rng: u64,
    records: Vec<HistoryRecord>,
    total: i64,
    /// The last process number used.
    process: u64,
}

impl Run {
    fn next(&mut self, bound: u64) -> u64 {
        minos_checker::fxhash::splitmix64(&mut self.rng) % bound
    }

    fn push(&mut self, process: u64, kind: RecordType, f: &str, value: Value) {
        self.records.push(HistoryRecord {
            index: self.records.len() as u64,
            time: self.records.len() as u64 * 1_000_000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some("k0".to_string()),
            value,
        });
    }

    /// `ops` ops of `clients` clients, each taking effect at one instant between its invoke
    /// and its completion.
    fn normal_phase(&mut self, ops: usize, clients: u64) {
        type Pending = Option<(u64, &'static str, i64, Option<Value>)>;
        let mut pending: Vec<Pending> = (0..clients).map(|_| None).collect();
        let mut invoked = 0;
        while invoked < ops || pending.iter().any(Option::is_some) {
            let slot = self.next(clients) as usize;
            match pending[slot].take() {
                None if invoked < ops => {
                    self.process += 1;
                    let (f, delta) = if self.next(2) == 0 {
                        ("read", 0)
                    } else {
                        ("add", 1 + self.next(5) as i64)
                    };
                    let value = if f == "add" {
                        json!(delta)
                    } else {
                        Value::Null
                    };
                    self.push(self.process, RecordType::Invoke, f, value);
                    pending[slot] = Some((self.process, f, delta, None));
                    invoked += 1;
                }
                None => {}
                Some((process, f, delta, None)) => {
                    let result = if f == "add" {
                        self.total += delta;
                        json!([delta, self.total])
                    } else {
                        json!(self.total)
                    };
                    pending[slot] = Some((process, f, delta, Some(result)));
                }
                Some((process, f, _, Some(result))) => {
                    self.push(process, RecordType::Ok, f, result);
                }
            }
        }
    }
}
