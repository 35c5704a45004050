//! Realistic run directories for tests and benchmarks (not used by the CLI): a counter workload
//! with several clients, timeouts (`info`) and refusals (`fail`) concentrated in faults,
//! partition/kill nemesis records with targets, and optionally a planted stale read with the
//! counterexample a checker would report, or hostile strings in keys and values.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Value};

/// What to generate.
#[derive(Clone, Debug)]
pub struct FixtureOptions {
    pub seed: u64,
    pub ops_count: usize,
    pub clients: u64,
    pub duration_s: u64,
    /// Plant a stale read and record an invalid verdict with its counterexample.
    pub invalid: bool,
    /// Put `<script>`, quotes and ampersands into keys, values and error strings.
    pub hostile: bool,
    /// Also write history.csv (as the workloads crate does).
    pub with_history_csv: bool,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        FixtureOptions {
            seed: 42,
            ops_count: 1000,
            clients: 5,
            duration_s: 60,
            invalid: false,
            hostile: false,
            with_history_csv: false,
        }
    }
}

/// A small deterministic PRNG (splitmix64); fixtures must not depend on an RNG crate's versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct FaultPlan {
    kind: &'static str,
    start_ns: u64,
    stop_ns: u64,
    targets: Vec<String>,
    detail: Value,
}

fn plan_faults(rng: &mut Rng, duration_ns: u64) -> Vec<FaultPlan> {
    let s = 1_000_000_000u64;
    let mut faults = Vec::new();
    let mut t = 5 * s;
    let mut i = 0;
    while t + 6 * s < duration_ns {
        let length = (4 + rng.below(5)) * s;
        let fault = if i % 2 == 0 {
            let cut = 1 + rng.below(2) as usize;
            let nodes: Vec<String> = (1..=5).map(|n| format!("n{n}")).collect();
            let (a, b) = nodes.split_at(cut + 1);
            FaultPlan {
                kind: "partition",
                start_ns: t,
                stop_ns: t + length,
                targets: a.to_vec(),
                detail: json!({"groups": [a, b]}),
            }
        } else {
            let node = format!("n{}", 1 + rng.below(5));
            FaultPlan {
                kind: "kill",
                start_ns: t,
                stop_ns: t + length,
                targets: vec![node.clone()],
                detail: json!({"nodes": [node]}),
            }
        };
        faults.push(fault);
        t += length + (3 + rng.below(5)) * s;
        i += 1;
    }
    faults
}

struct GenOp {
    process: u64,
    f: &'static str,
    key: String,
    invoke_ns: u64,
    complete_ns: u64,
    outcome: &'static str,
    invoke_value: Value,
    result: Value,
    /// Linearization point, for the values reads return (keeps the valid fixture linearizable).
    lin_ns: u64,
    delta: i64,
    applied: bool,
}

/// Writes a run directory: history.jsonl, results.json, nodes/n<i>.log (and history.csv).
pub fn write_run_dir(dir: &Path, options: &FixtureOptions) -> std::io::Result<()> {
    fs::create_dir_all(dir.join("nodes"))?;
    let mut rng = Rng(options.seed);
    let ms = 1_000_000u64;
    let duration_ns = options.duration_s * 1_000_000_000;
    let faults = plan_faults(&mut rng, duration_ns);
    let in_fault = |t: u64| faults.iter().any(|f| t >= f.start_ns && t < f.stop_ns);
    let keys: Vec<String> = if options.hostile {
        vec![
            "k1".into(),
            "k2".into(),
            "<script>alert(\"k\")</script>".into(),
        ]
    } else {
        (1..=4).map(|k| format!("k{k}")).collect()
    };
    let per_client = (options.ops_count as u64).div_ceil(options.clients.max(1));
    // Paced to finish in about 70% of the run, so that timeouts in faults do not starve the count.
    let period_ns = (duration_ns * 7 / 10 / per_client.max(1)).max(ms);

    // Each client runs ops back to back with think time; an `info` retires its process number.
    let mut ops: Vec<GenOp> = Vec::with_capacity(options.ops_count);
    let mut next_process = options.clients;
    for client in 0..options.clients {
        let mut process = client;
        let mut t = rng.below(period_ns);
        let mut client_ops = 0u64;
        while client_ops < per_client && ops.len() < options.ops_count && t < duration_ns {
            client_ops += 1;
            let key = keys[rng.below(keys.len() as u64) as usize].clone();
            let is_read = rng.chance(40);
            let faulty = in_fault(t) && rng.chance(35);
            let (latency, outcome) = if faulty {
                match rng.below(3) {
                    0 => (1000 * ms, "info"),
                    1 => ((2 + rng.below(5)) * ms, "fail"),
                    _ => ((200 + rng.below(700)) * ms, "ok"),
                }
            } else {
                ((1 + rng.below(8)) * ms + rng.below(ms), "ok")
            };
            let delta = 1 + rng.below(5) as i64;
            let applied = outcome == "ok" || (outcome == "info" && rng.chance(50));
            ops.push(GenOp {
                process,
                f: if is_read { "read" } else { "add" },
                key,
                invoke_ns: t,
                complete_ns: t + latency,
                outcome,
                invoke_value: if is_read { Value::Null } else { json!(delta) },
                result: Value::Null,
                lin_ns: t + latency / 2,
                delta: if is_read { 0 } else { delta },
                applied: applied && !is_read,
            });
            if outcome == "info" {
                process = next_process;
                next_process += 1;
            }
            // Mean step 0.6 periods, so that the ops fit in the run and faults get their share.
            let step = period_ns / 4 + rng.below(period_ns * 7 / 10);
            t += latency.max(step) + ms;
        }
        if ops.len() >= options.ops_count {
            break;
        }
    }
    // Values: apply effects in linearization order.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].lin_ns, i));
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for &i in &order {
        let op = &mut ops[i];
        let total = totals.entry(op.key.clone()).or_insert(0);
        if op.f == "add" {
            if op.applied {
                *total += op.delta;
            }
            op.result = match op.outcome {
                "ok" => json!([op.delta, *total]),
                "fail" => json!({"error": "not leader"}),
                _ => json!({"error": "timeout"}),
            };
        } else {
            op.result = match op.outcome {
                "ok" => json!(*total),
                "fail" => json!({"error": "not leader"}),
                _ => json!({"error": "timeout"}),
            };
        }
        if options.hostile && op.outcome != "ok" {
            op.result = json!({"error": "<script>alert('x')</script> \"quoted\" & more"});
        }
    }

    // The planted bug: a read in the middle of the run returns a stale total.
    let mut counterexample = Value::Null;
    let mut records: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        // At equal times a completion sorts before an invocation, so a process never looks busy.
        records.push((op.invoke_ns, 1, i));
        records.push((op.complete_ns, 0, i));
    }
    records.sort();
    let mut invoke_index = vec![0u64; ops.len()];
    let mut complete_index = vec![0u64; ops.len()];
    {
        let mut next = 0u64;
        let mut nemesis_at: Vec<(u64, u64)> = Vec::new();
        for f in &faults {
            nemesis_at.push((f.start_ns, 0));
            nemesis_at.push((f.stop_ns, 0));
        }
        nemesis_at.sort();
        let mut n = 0;
        for &(t, phase, i) in &records {
            while n < nemesis_at.len() && nemesis_at[n].0 <= t {
                next += 1;
                n += 1;
            }
            if phase == 1 {
                invoke_index[i] = next;
            } else {
                complete_index[i] = next;
            }
            next += 1;
        }
    }
    if options.invalid {
        let mut candidates: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                ops[i].f == "read"
                    && ops[i].outcome == "ok"
                    && ops[i].result.as_i64().unwrap_or(0) > 3
            })
            .collect();
        candidates.sort_by_key(|&i| invoke_index[i]);
        if let Some(&victim) = candidates.get(candidates.len() / 2) {
            let truth = ops[victim].result.as_i64().unwrap_or(0);
            let stale = truth - 3;
            ops[victim].result = json!(stale);
            counterexample =
                build_counterexample(&ops, victim, truth, stale, &invoke_index, &complete_index);
        }
    }

    // history.jsonl, in real-time order with nemesis records interleaved.
    let mut lines: Vec<(u64, Value)> = Vec::with_capacity(ops.len() * 2 + faults.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        let mut invoke = json!({"index": invoke_index[i], "time": op.invoke_ns, "process": op.process,
            "type": "invoke", "f": op.f, "key": op.key, "value": op.invoke_value});
        let mut complete = json!({"index": complete_index[i], "time": op.complete_ns, "process": op.process,
            "type": op.outcome, "f": op.f, "key": op.key, "value": op.result});
        if options.hostile && i == 3 {
            invoke["f"] = json!("<img src=x onerror=alert(1)>");
            complete["f"] = json!("<img src=x onerror=alert(1)>");
        }
        lines.push((invoke_index[i], invoke));
        lines.push((complete_index[i], complete));
    }
    let mut fault_json = Vec::new();
    {
        // Nemesis records take the indexes left free above, in time order.
        let used: std::collections::BTreeSet<u64> = lines.iter().map(|l| l.0).collect();
        let mut free = (0u64..).filter(|i| !used.contains(i));
        let mut events: Vec<(u64, bool, &FaultPlan)> = Vec::new();
        for f in &faults {
            events.push((f.start_ns, true, f));
            events.push((f.stop_ns, false, f));
        }
        events.sort_by_key(|e| (e.0, e.1));
        for (t, start, f) in events {
            let index = free.next().expect("unbounded");
            let value = if start { f.detail.clone() } else { Value::Null };
            let fname = format!("{}-{}", if start { "start" } else { "stop" }, f.kind);
            lines.push((index, json!({"index": index, "time": t, "process": "nemesis", "type": "info", "f": fname, "value": value})));
        }
        for f in &faults {
            fault_json.push(
                json!({"kind": f.kind, "start_ns": f.start_ns, "stop_ns": f.stop_ns,
                "targets": f.targets, "detail": f.detail}),
            );
        }
    }
    lines.sort_by_key(|l| l.0);
    let mut text = String::with_capacity(lines.len() * 110);
    for (_, line) in &lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    fs::write(dir.join("history.jsonl"), &text)?;
    if options.with_history_csv {
        let mut csv = String::from("index,time_ns,process,type,f,key,value\n");
        for (_, l) in &lines {
            csv.push_str(&format!(
                "{},{},{},{},{},{},\"{}\"\n",
                l["index"],
                l["time"],
                l["process"],
                l["type"].as_str().unwrap_or(""),
                l["f"].as_str().unwrap_or(""),
                l["key"].as_str().unwrap_or(""),
                l["value"].to_string().replace('"', "\"\"")
            ));
        }
        fs::write(dir.join("history.csv"), csv)?;
    }
    for n in 1..=5 {
        fs::write(
            dir.join("nodes").join(format!("n{n}.log")),
            format!("n{n}: started\nn{n}: became follower in term 1\n"),
        )?;
    }

    let verdict = if counterexample.is_null() {
        "valid"
    } else {
        "invalid"
    };
    let checker = json!({
        "verdict": verdict, "model": "counter", "ops_count": ops.len(),
        "partitions": keys.iter().map(|k| json!({"key": k,
            "verdict": if counterexample.get("key").and_then(Value::as_str) == Some(k.as_str()) { "invalid" } else { "valid" },
            "ops_count": ops.iter().filter(|o| &o.key == k).count(), "states_explored": 100, "elapsed_ms": 1})).collect::<Vec<_>>(),
        "unknown_reason": null, "counterexample": counterexample, "elapsed_ms": 5
    });
    let history_sha256 = crate::rebuild::sha256_hex(text.as_bytes());
    let results = json!({
        "minos_version": "0.1.0", "test_name": "counter",
        "run_id": format!("20261122T153000-seed{}", options.seed), "seed": options.seed,
        "options": {"nodes": 5, "clients": options.clients, "keys": keys.len(), "time_limit_ms": options.duration_s * 1000,
            "rate_ops_per_s": 100, "workload": "counter", "nemesis": ["partition", "kill"], "nemesis_interval_ms": 10000,
            "schedule": null, "bugs": if options.invalid { json!(["stale-read"]) } else { json!([]) }},
        "verdict": verdict,
        "causes": if options.invalid { json!(["linearizability"]) } else { json!([]) },
        "checker": checker,
        "invariants": [{"name": "one leader per term", "ok": true, "detail": null},
                       {"name": "committed entries never change", "ok": true, "detail": null}],
        "liveness": {"ok": true, "detail": "committed again 0.8 s after healing"},
        "faults": fault_json,
        "history": {"file": "history.jsonl", "sha256": history_sha256, "ops_count": ops.len()},
        "timings": {"simulated_ms": options.duration_s * 1000, "wall_ms": 450, "check_ms": 20, "sim_to_wall_ratio": 133.3},
        "reproduce": format!("minos run --seed {} --nodes 5 --clients {} --time-limit {}s{}", options.seed, options.clients,
            options.duration_s, if options.invalid { " --bug stale-read" } else { "" })
    });
    fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results).expect("json"),
    )?;
    Ok(())
}

fn op_json(op: &GenOp, index: u64) -> Value {
    json!({"index": index, "process": op.process, "f": op.f, "invoke_value": op.invoke_value,
           "result": op.result, "type": op.outcome})
}

/// The counterexample a checker reports for the planted stale read: the ok ops on the key up to
/// the read, the state they lead to, and why the read cannot be placed after them.
fn build_counterexample(
    ops: &[GenOp],
    victim: usize,
    truth: i64,
    stale: i64,
    invoke_index: &[u64],
    complete_index: &[u64],
) -> Value {
    let key = ops[victim].key.clone();
    let mut on_key: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            ops[i].key == key
                && ops[i].outcome == "ok"
                && i != victim
                && ops[i].complete_ns < ops[victim].invoke_ns
        })
        .collect();
    on_key.sort_by_key(|&i| ops[i].lin_ns);
    let prefix: Vec<Value> = on_key
        .iter()
        .rev()
        .take(12)
        .rev()
        .map(|&i| op_json(&ops[i], invoke_index[i]))
        .collect();
    let first = on_key
        .iter()
        .rev()
        .take(12)
        .map(|&i| invoke_index[i])
        .min()
        .unwrap_or(invoke_index[victim]);
    let reason = format!("read returned {stale} but the counter is {truth}");
    let text = format!(
        "key {key}: after the {} linearized ops shown, the counter is {truth}; op {} (process {}, read) returned {stale}: {reason}.",
        prefix.len(), invoke_index[victim], ops[victim].process
    );
    json!({
        "key": key,
        "linearized_prefix": prefix,
        "state": truth,
        "stuck": [{"op": op_json(&ops[victim], invoke_index[victim]), "reason": reason}],
        "window": {"first_index": first, "last_index": complete_index[victim] + 6},
        "text": text
    })
}
