//! Differential and property tests of the search against a brute-force reference.
//!
//! - Random small concurrent histories for every model: the checker's verdict must equal that
//!   of a brute-force enumeration of every order that respects real time (with `info` ops
//!   optionally left out) using the same model's step function.
//! - Histories recorded from a real concurrent execution of a sequential object (each op takes
//!   effect at one instant between its invoke and completion) must always be valid.
//!
//! A small seeded generator keeps the tests deterministic and the build lean.

use minos_checker::history::{
    parse_jsonl, History, HistoryRecord, Operation, Outcome, Output, Process, RecordType,
};
use minos_checker::model::{self, Model};
use minos_checker::{check, CheckOptions, Verdict};
use serde_json::{json, Value};

/// SplitMix64, seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One op as generated: f, invoke value, and the output it reports if ok.
struct Call {
    f: &'static str,
    invoke: Value,
    output: Value,
}

/// A random op for `model` with a random (often wrong) output.
fn random_call(model: &str, rng: &mut Rng) -> Call {
    let small = |rng: &mut Rng| json!(rng.below(3));
    match model {
        "register" => match rng.below(2) {
            0 => Call {
                f: "read",
                invoke: Value::Null,
                output: small(rng),
            },
            _ => {
                let value = small(rng);
                Call {
                    f: "write",
                    invoke: value.clone(),
                    output: value,
                }
            }
        },
        "cas-register" => match rng.below(3) {
            0 => Call {
                f: "read",
                invoke: Value::Null,
                output: small(rng),
            },
            1 => {
                let value = small(rng);
                Call {
                    f: "write",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => {
                let value = json!([rng.below(3), rng.below(3)]);
                Call {
                    f: "cas",
                    invoke: value.clone(),
                    output: value,
                }
            }
        },
        "counter" => match rng.below(4) {
            0 => Call {
                f: "read",
                invoke: Value::Null,
                output: json!(rng.below(5)),
            },
            1 => {
                let delta = 1 + rng.below(2);
                let output = if rng.chance(50) {
                    json!([delta, rng.below(5)])
                } else {
                    json!(delta)
                };
                Call {
                    f: "add",
                    invoke: json!(delta),
                    output,
                }
            }
            2 => {
                let value = small(rng);
                Call {
                    f: "write",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => {
                let value = json!([rng.below(3), rng.below(3)]);
                Call {
                    f: "cas",
                    invoke: value.clone(),
                    output: value,
                }
            }
        },
        "kv" => match rng.below(3) {
            0 => Call {
                f: "get",
                invoke: Value::Null,
                output: json!(*rng.pick(&["", "a", "b", "ab", "ba", "aa"])),
            },
            1 => {
                let value = json!(*rng.pick(&["a", "b"]));
                Call {
                    f: "put",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => {
                let value = json!(*rng.pick(&["a", "b"]));
                Call {
                    f: "append",
                    invoke: value.clone(),
                    output: value,
                }
            }
        },
        "mutex" => {
            let f = *rng.pick(&["acquire", "release"]);
            Call {
                f,
                invoke: Value::Null,
                output: Value::Null,
            }
        }
        "set" => match rng.below(2) {
            0 => {
                let value = json!(1 + rng.below(2));
                Call {
                    f: "add",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => Call {
                f: "read",
                invoke: Value::Null,
                output: json!(*rng.pick(&[&[][..], &[1][..], &[2][..], &[1, 2][..]])),
            },
        },
        "fifo-queue" => match rng.below(2) {
            0 => {
                let value = json!(1 + rng.below(3));
                Call {
                    f: "enqueue",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => Call {
                f: "dequeue",
                invoke: Value::Null,
                output: rng
                    .pick(&[json!(1), json!(2), json!(3), Value::Null])
                    .clone(),
            },
        },
        "unordered-queue" => match rng.below(2) {
            0 => {
                let value = json!(1 + rng.below(3));
                Call {
                    f: "enqueue",
                    invoke: value.clone(),
                    output: value,
                }
            }
            // Null: the dequeue found the queue empty.
            _ => Call {
                f: "dequeue",
                invoke: Value::Null,
                output: rng
                    .pick(&[json!(1), json!(2), json!(3), Value::Null])
                    .clone(),
            },
        },
        "multi-register" => match rng.below(3) {
            0 => Call {
                f: "txn",
                invoke: json!([["read", "x", null], ["read", "y", null]]),
                output: json!([["read", "x", rng.below(2)], ["read", "y", rng.below(2)]]),
            },
            1 => {
                let value = json!([["write", *rng.pick(&["x", "y"]), rng.below(2)]]);
                Call {
                    f: "txn",
                    invoke: value.clone(),
                    output: value,
                }
            }
            _ => {
                let value = json!([["write", "x", rng.below(2)], ["write", "y", rng.below(2)]]);
                Call {
                    f: "txn",
                    invoke: value.clone(),
                    output: value,
                }
            }
        },
        other => panic!("no generator for {other}"),
    }
}

/// Interleaves `ops_count` random ops of `processes` clients into history.jsonl records.
fn random_history(model: &str, keys: &[Option<&str>], ops_count: usize, rng: &mut Rng) -> String {
    random_history_with_info(model, keys, ops_count, 12, rng)
}

/// As `random_history`, with `info_percent` of completions ending in info.
fn random_history_with_info(
    model: &str,
    keys: &[Option<&str>],
    ops_count: usize,
    info_percent: u64,
    rng: &mut Rng,
) -> String {
    let processes = 3;
    let mut records = Vec::new();
    // Per process: the pending call (f, invoke, output, key) or none.
    let mut pending: Vec<Option<(Call, Option<String>)>> = (0..processes).map(|_| None).collect();
    let mut process_ids: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut invoked = 0;
    let push = |records: &mut Vec<HistoryRecord>,
                process: u64,
                kind: RecordType,
                f: &str,
                key: &Option<String>,
                value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64 * 1000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: key.clone(),
            value,
        });
    };
    while invoked < ops_count || pending.iter().any(Option::is_some) {
        let slot = rng.below(processes as u64) as usize;
        match pending[slot].take() {
            None if invoked < ops_count => {
                let call = random_call(model, rng);
                let key = rng.pick(keys).map(str::to_string);
                push(
                    &mut records,
                    process_ids[slot],
                    RecordType::Invoke,
                    call.f,
                    &key,
                    call.invoke.clone(),
                );
                pending[slot] = Some((call, key));
                invoked += 1;
            }
            None => {}
            Some((call, key)) => {
                let roll = rng.below(100);
                if roll < info_percent {
                    push(
                        &mut records,
                        process_ids[slot],
                        RecordType::Info,
                        call.f,
                        &key,
                        call.invoke.clone(),
                    );
                    process_ids[slot] = next_process;
                    next_process += 1;
                } else if roll < info_percent + 8 {
                    push(
                        &mut records,
                        process_ids[slot],
                        RecordType::Fail,
                        call.f,
                        &key,
                        call.invoke.clone(),
                    );
                } else if roll < info_percent + 12 && invoked >= ops_count {
                    // Left pending at the end of the history: like info.
                } else {
                    push(
                        &mut records,
                        process_ids[slot],
                        RecordType::Ok,
                        call.f,
                        &key,
                        call.output,
                    );
                }
            }
        }
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

/// Per op of `history`, the position of its call and of its return among the history's
/// events (`usize::MAX` when it has none).
fn event_times(history: &History) -> (Vec<usize>, Vec<usize>) {
    let mut call_at = vec![usize::MAX; history.ops.len()];
    let mut return_at = vec![usize::MAX; history.ops.len()];
    for (time, event) in history.events.iter().enumerate() {
        let times = if event.is_call() {
            &mut call_at
        } else {
            &mut return_at
        };
        times[event.op()] = time;
    }
    (call_at, return_at)
}

/// Brute force: is there an order of the ok ops and a subset of the info ops, respecting
/// real time, that the model accepts? Ops are taken from `history` restricted to `key`.
fn brute_force<M: Model>(model: &M, history: &History, key: &Option<String>) -> bool {
    let mut ops: Vec<(&Operation, M::Op, usize, usize)> = Vec::new();
    let (call_at, return_at) = event_times(history);
    for (position, op) in history.ops.iter().enumerate() {
        if op.key.as_deref() != key.as_deref() || op.outcome == Outcome::Fail {
            continue;
        }
        ops.push((
            op,
            model.compile(op).expect("generated ops fit"),
            call_at[position],
            return_at[position],
        ));
    }
    fn search<M: Model>(
        model: &M,
        ops: &[(&Operation, M::Op, usize, usize)],
        done: &mut Vec<bool>,
        state: &M::State,
    ) -> bool {
        let all_ok_done = ops
            .iter()
            .zip(done.iter())
            .all(|((op, ..), &done)| done || !matches!(op.outcome, Outcome::Ok(_)));
        if all_ok_done {
            return true;
        }
        for candidate in 0..ops.len() {
            if done[candidate] {
                continue;
            }
            // Every op that returned before this one was called must already be done.
            let call = ops[candidate].2;
            let blocked = (0..ops.len())
                .any(|other| !done[other] && other != candidate && ops[other].3 < call);
            if blocked {
                continue;
            }
            if let Some(next) = model.step(state, &ops[candidate].1) {
                done[candidate] = true;
                let found = search(model, ops, done, &next);
                done[candidate] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    let mut done = vec![false; ops.len()];
    search(model, &ops, &mut done, &model.init_state())
}

/// Brute force for the unordered queue, written without the model: an in-doubt dequeue that
/// happened took any one element present (or found the queue empty, which changes nothing and
/// is the same as not happening); an ok dequeue of null found the queue empty.
fn brute_force_unordered_queue(history: &History, key: &Option<String>) -> bool {
    struct QueueOp<'h> {
        op: &'h Operation,
        call: usize,
        ret: usize,
    }
    let (call_at, return_at) = event_times(history);
    let ops: Vec<QueueOp> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.key.as_deref() == key.as_deref() && op.outcome != Outcome::Fail)
        .map(|(position, op)| QueueOp {
            op,
            call: call_at[position],
            ret: return_at[position],
        })
        .collect();
    type Bag = std::collections::BTreeMap<String, u32>;
    fn search(ops: &[QueueOp], done: &mut Vec<bool>, bag: &Bag) -> bool {
        let all_ok_done = ops
            .iter()
            .zip(done.iter())
            .all(|(op, &done)| done || !matches!(op.op.outcome, Outcome::Ok(_)));
        if all_ok_done {
            return true;
        }
        for candidate in 0..ops.len() {
            if done[candidate] {
                continue;
            }
            let call = ops[candidate].call;
            if (0..ops.len())
                .any(|other| !done[other] && other != candidate && ops[other].ret < call)
            {
                continue;
            }
            let op = ops[candidate].op;
            let mut successors: Vec<Bag> = Vec::new();
            match (op.f.as_str(), &op.outcome) {
                ("enqueue", _) => {
                    let mut next = bag.clone();
                    *next.entry(op.invoke_value.to_string()).or_insert(0) += 1;
                    successors.push(next);
                }
                ("dequeue", Outcome::Ok(Output::Known(Value::Null))) => {
                    if bag.is_empty() {
                        successors.push(bag.clone());
                    }
                }
                ("dequeue", Outcome::Ok(Output::Known(element))) => {
                    let element = element.to_string();
                    if bag.contains_key(&element) {
                        let mut next = bag.clone();
                        *next.get_mut(&element).unwrap() -= 1;
                        next.retain(|_, count| *count > 0);
                        successors.push(next);
                    }
                }
                ("dequeue", _) => {
                    for element in bag.keys() {
                        let mut next = bag.clone();
                        *next.get_mut(element).unwrap() -= 1;
                        next.retain(|_, count| *count > 0);
                        successors.push(next);
                    }
                }
                (f, _) => panic!("no queue op {f}"),
            }
            for next in successors {
                done[candidate] = true;
                let found = search(ops, done, &next);
                done[candidate] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }
    let mut done = vec![false; ops.len()];
    search(&ops, &mut done, &Bag::new())
}

fn reference_for(model_name: &str, history: &History, key: &Option<String>) -> bool {
    match model_name {
        "register" => brute_force(&model::Register::new(None, false).unwrap(), history, key),
        "cas-register" => brute_force(&model::Register::new(None, true).unwrap(), history, key),
        "counter" => brute_force(&model::Counter::new(None).unwrap(), history, key),
        "kv" => brute_force(&model::Kv::new(None).unwrap(), history, key),
        "mutex" => brute_force(&model::Mutex::new(None).unwrap(), history, key),
        "set" => brute_force(&model::Set::new(None).unwrap(), history, key),
        "fifo-queue" => brute_force(&model::FifoQueue::new(None).unwrap(), history, key),
        "unordered-queue" => brute_force_unordered_queue(history, key),
        "multi-register" => brute_force(
            &model::MultiRegister::new(Some(&json!({"x": 0, "y": 0}))).unwrap(),
            history,
            key,
        ),
        other => panic!("no reference for {other}"),
    }
}

fn options_for(model_name: &str) -> CheckOptions {
    let mut options = CheckOptions::new(model_name);
    options.threads = 2;
    // Supply pruning from the first step: these histories are far too small to reach the
    // step count at which a check prepares it.
    options.supply_after_steps = 0;
    if model_name == "multi-register" {
        options.init = Some(json!({"x": 0, "y": 0}));
    }
    options
}

const MODELS: &[&str] = &[
    "register",
    "cas-register",
    "counter",
    "kv",
    "mutex",
    "set",
    "fifo-queue",
    "unordered-queue",
    "multi-register",
];

#[test]
fn search_agrees_with_brute_force_on_random_histories() {
    let mut rng = Rng(0x5eed_0001);
    for model_name in MODELS {
        let mut verdicts = [0usize; 2];
        for round in 0..300 {
            let ops_count = 2 + (round % 7);
            let text = random_history(model_name, &[None], ops_count, &mut rng);
            let history = parse_jsonl(&text, "generated").expect("generated histories parse");
            let report =
                check(&history, &options_for(model_name)).expect("generated ops fit the model");
            let expected = reference_for(model_name, &history, &None);
            assert_eq!(
                report.verdict,
                if expected {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                "model {model_name}, history:\n{text}\n{}",
                report.explanation_text()
            );
            verdicts[usize::from(expected)] += 1;
        }
        // The generator must produce both kinds, or the comparison proves little.
        assert!(
            verdicts[0] > 10 && verdicts[1] > 10,
            "{model_name}: {verdicts:?} (invalid, valid)"
        );
    }
}

/// Whether two in-doubt ops share key, f and argument (the search explores such twins as
/// interchangeable).
fn has_in_doubt_twins(history: &History) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    history
        .ops
        .iter()
        .filter(|op| op.outcome == Outcome::Info)
        .any(|op| !seen.insert((op.key.clone(), op.f.clone(), op.invoke_value.to_string())))
}

#[test]
fn search_agrees_with_brute_force_on_histories_full_of_in_doubt_twins() {
    let mut rng = Rng(0x5eed_0004);
    for model_name in MODELS {
        let mut verdicts = [0usize; 2];
        let mut with_twins = 0;
        let rounds = 250;
        for round in 0..rounds {
            let ops_count = 6 + (round % 6);
            let text = random_history_with_info(model_name, &[None], ops_count, 55, &mut rng);
            let history = parse_jsonl(&text, "generated").expect("generated histories parse");
            let report =
                check(&history, &options_for(model_name)).expect("generated ops fit the model");
            let expected = reference_for(model_name, &history, &None);
            assert_eq!(
                report.verdict,
                if expected {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                "model {model_name}, history:\n{text}\n{}",
                report.explanation_text()
            );
            verdicts[usize::from(expected)] += 1;
            with_twins += usize::from(has_in_doubt_twins(&history));
        }
        assert!(
            verdicts[0] > 10 && verdicts[1] > 10,
            "{model_name}: {verdicts:?} (invalid, valid)"
        );
        assert!(
            with_twins * 2 > rounds,
            "{model_name}: only {with_twins} of {rounds} histories have in-doubt twins"
        );
    }
    // Whole-map checks: ops alike but on different keys are not twins.
    for model_name in ["counter", "register", "kv"] {
        for round in 0..150 {
            let keys = [Some("a"), Some("b")];
            let text = random_history_with_info(model_name, &keys, 4 + round % 6, 45, &mut rng);
            let history = parse_jsonl(&text, "generated").unwrap();
            let expected = [Some("a".to_string()), Some("b".to_string())]
                .iter()
                .all(|key| reference_for(model_name, &history, key));
            let mut whole_options = options_for(model_name);
            whole_options.partition = false;
            let whole = check(&history, &whole_options).unwrap();
            assert_eq!(
                whole.verdict == Verdict::Valid,
                expected,
                "{model_name} --no-partition:\n{text}"
            );
        }
    }
}

#[test]
fn partitioned_and_whole_map_checks_agree_with_brute_force_per_key() {
    let mut rng = Rng(0x5eed_0002);
    for model_name in ["register", "counter", "kv", "cas-register"] {
        for round in 0..200 {
            let text = random_history(model_name, &[Some("a"), Some("b")], 3 + round % 6, &mut rng);
            let history = parse_jsonl(&text, "generated").unwrap();
            let expected = [Some("a".to_string()), Some("b".to_string())]
                .iter()
                .all(|key| reference_for(model_name, &history, key));
            let expected = if expected {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
            let partitioned = check(&history, &options_for(model_name)).unwrap();
            let mut whole_options = options_for(model_name);
            whole_options.partition = false;
            let whole = check(&history, &whole_options).unwrap();
            assert_eq!(
                partitioned.verdict, expected,
                "{model_name} partitioned:\n{text}"
            );
            assert_eq!(
                whole.verdict, expected,
                "{model_name} --no-partition:\n{text}"
            );
        }
    }
}

/// A sequential object run by concurrent clients: each op takes effect at one instant between
/// its invoke and its completion; some clients crash (info) before or after the effect.
fn sequential_execution(model_name: &str, ops_count: usize, rng: &mut Rng) -> String {
    #[derive(Clone)]
    enum Object {
        Register(i64),
        Counter(i64),
        Kv(String),
        Queue(std::collections::VecDeque<i64>),
        /// An unordered queue: dequeue hands out the largest element, not the oldest.
        Bag(Vec<i64>),
        Mutex(bool),
    }
    let mut object = match model_name {
        "register" | "cas-register" => Object::Register(0),
        "counter" => Object::Counter(0),
        "kv" => Object::Kv(String::new()),
        "fifo-queue" => Object::Queue(Default::default()),
        "unordered-queue" => Object::Bag(Vec::new()),
        "mutex" => Object::Mutex(false),
        other => panic!("no executor for {other}"),
    };
    // Applies a call; returns (ok?, output).
    let mut apply = |call: &Call| -> (bool, Value) {
        match (&mut object, call.f) {
            (Object::Register(value), "read") => (true, json!(*value)),
            (Object::Register(value), "write") => {
                *value = call.invoke.as_i64().unwrap();
                (true, call.invoke.clone())
            }
            (Object::Register(value), "cas") => {
                let old = call.invoke[0].as_i64().unwrap();
                if *value == old {
                    *value = call.invoke[1].as_i64().unwrap();
                    (true, call.invoke.clone())
                } else {
                    (false, call.invoke.clone())
                }
            }
            (Object::Counter(value), "read") => (true, json!(*value)),
            (Object::Counter(value), "add") => {
                let delta = call.invoke.as_i64().unwrap();
                *value += delta;
                (true, json!([delta, *value]))
            }
            (Object::Counter(value), "write") => {
                *value = call.invoke.as_i64().unwrap();
                (true, call.invoke.clone())
            }
            (Object::Counter(value), "cas") => {
                let old = call.invoke[0].as_i64().unwrap();
                if *value == old {
                    *value = call.invoke[1].as_i64().unwrap();
                    (true, call.invoke.clone())
                } else {
                    (false, call.invoke.clone())
                }
            }
            (Object::Kv(text), "get") => (true, json!(text.clone())),
            (Object::Kv(text), "put") => {
                *text = call.invoke.as_str().unwrap().to_string();
                (true, call.invoke.clone())
            }
            (Object::Kv(text), "append") => {
                text.push_str(call.invoke.as_str().unwrap());
                (true, call.invoke.clone())
            }
            (Object::Queue(queue), "enqueue") => {
                queue.push_back(call.invoke.as_i64().unwrap());
                (true, call.invoke.clone())
            }
            (Object::Queue(queue), "dequeue") => (
                true,
                queue.pop_front().map_or(Value::Null, |value| json!(value)),
            ),
            (Object::Bag(bag), "enqueue") => {
                bag.push(call.invoke.as_i64().unwrap());
                (true, call.invoke.clone())
            }
            (Object::Bag(bag), "dequeue") => {
                let largest = (0..bag.len()).max_by_key(|&at| bag[at]);
                (
                    true,
                    largest.map_or(Value::Null, |at| json!(bag.swap_remove(at))),
                )
            }
            (Object::Mutex(held), "acquire") => {
                if *held {
                    (false, Value::Null)
                } else {
                    *held = true;
                    (true, Value::Null)
                }
            }
            (Object::Mutex(held), "release") => {
                if *held {
                    *held = false;
                    (true, Value::Null)
                } else {
                    (false, Value::Null)
                }
            }
            (_, f) => panic!("executor has no {f}"),
        }
    };
    let processes = 4;
    // Per process: pending (call, applied result).
    type Pending = Option<(Call, Option<(bool, Value)>)>;
    let mut pending: Vec<Pending> = (0..processes).map(|_| None).collect();
    let mut process_ids: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut records: Vec<HistoryRecord> = Vec::new();
    let mut invoked = 0;
    let record = |records: &mut Vec<HistoryRecord>,
                  process: u64,
                  kind: RecordType,
                  f: &str,
                  value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: None,
            value,
        });
    };
    while invoked < ops_count || pending.iter().any(Option::is_some) {
        let slot = rng.below(processes as u64) as usize;
        let process = process_ids[slot];
        match pending[slot].take() {
            None if invoked < ops_count => {
                let call = random_call(model_name, rng);
                record(
                    &mut records,
                    process,
                    RecordType::Invoke,
                    call.f,
                    call.invoke.clone(),
                );
                pending[slot] = Some((call, None));
                invoked += 1;
            }
            None => {}
            Some((call, None)) => {
                if rng.chance(5) {
                    // Crashes before taking effect.
                    record(
                        &mut records,
                        process,
                        RecordType::Info,
                        call.f,
                        call.invoke.clone(),
                    );
                    process_ids[slot] = next_process;
                    next_process += 1;
                } else {
                    let result = apply(&call);
                    pending[slot] = Some((call, Some(result)));
                }
            }
            Some((call, Some((ok, output)))) => {
                if rng.chance(5) {
                    // Took effect, but the client never learned the outcome.
                    record(
                        &mut records,
                        process,
                        RecordType::Info,
                        call.f,
                        call.invoke.clone(),
                    );
                    process_ids[slot] = next_process;
                    next_process += 1;
                } else {
                    let kind = if ok { RecordType::Ok } else { RecordType::Fail };
                    record(&mut records, process, kind, call.f, output);
                }
            }
        }
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

#[test]
fn histories_of_real_executions_are_valid() {
    let mut rng = Rng(0x5eed_0003);
    for model_name in [
        "register",
        "cas-register",
        "counter",
        "kv",
        "fifo-queue",
        "unordered-queue",
        "mutex",
    ] {
        for round in 0..150 {
            let text = sequential_execution(model_name, 5 + round % 60, &mut rng);
            let history = parse_jsonl(&text, "execution").unwrap();
            let report = check(&history, &options_for(model_name)).unwrap();
            assert_eq!(
                report.verdict,
                Verdict::Valid,
                "{model_name}:\n{text}\n{}",
                report.explanation_text()
            );
        }
    }
}

/// The whole-map search (`--no-partition`) learns from a failure which key cannot be completed
/// and backjumps over the other keys' ops: its verdicts must still be exactly those of a
/// brute force per key, with many keys, in-doubt ops and every keyed model.
#[test]
fn whole_map_search_with_learned_key_failures_agrees_with_brute_force() {
    let mut rng = Rng(0x5eed_0005);
    for model_name in [
        "register",
        "cas-register",
        "counter",
        "kv",
        "mutex",
        "set",
        "fifo-queue",
        "unordered-queue",
    ] {
        let keys = [Some("a"), Some("b"), Some("c")];
        let mut verdicts = [0usize; 2];
        for round in 0..150 {
            let text = random_history_with_info(model_name, &keys, 6 + round % 10, 25, &mut rng);
            let history = parse_jsonl(&text, "generated").unwrap();
            let expected = keys
                .iter()
                .all(|key| reference_for(model_name, &history, &key.map(str::to_string)));
            verdicts[usize::from(expected)] += 1;
            let mut whole_options = options_for(model_name);
            whole_options.partition = false;
            let whole = check(&history, &whole_options).unwrap();
            assert_eq!(
                whole.verdict,
                if expected {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                "{model_name} --no-partition:\n{text}\n{}",
                whole.explanation_text()
            );
        }
        assert!(
            verdicts[0] > 5 && verdicts[1] > 5,
            "{model_name}: {verdicts:?} (invalid, valid)"
        );
    }
}

/// A kv key run by `processes` concurrent clients (each op takes effect at one instant between
/// its invoke and completion, some clients crash), whose gets then have one output perturbed
/// half the time: to a value the key had earlier, or to its value with one letter dropped.
/// Appended and put letters repeat or not (`distinct`), so growth pruning meets both.
fn perturbed_kv_execution(
    processes: usize,
    ops_count: usize,
    distinct: bool,
    rng: &mut Rng,
) -> String {
    perturbed_kv_execution_of(
        processes,
        ops_count,
        distinct,
        &["get", "get", "append", "append", "append", "put"],
        rng,
    )
}

/// As `perturbed_kv_execution`, drawing each op's f from `fs`.
fn perturbed_kv_execution_of(
    processes: usize,
    ops_count: usize,
    distinct: bool,
    fs: &[&'static str],
    rng: &mut Rng,
) -> String {
    let mut records: Vec<HistoryRecord> = Vec::new();
    let mut value = String::new();
    let mut seen = vec![String::new()];
    // Per process: (f, argument, effect taken, output).
    let mut pending: Vec<Option<(&str, String, bool, String)>> = vec![None; processes];
    let mut process_ids: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut invoked = 0;
    let mut letters = "abcdefghijklmnopqrstuvwxyz".chars().cycle();
    let push = |records: &mut Vec<HistoryRecord>,
                process: u64,
                kind: RecordType,
                f: &str,
                value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64 * 1000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some("k".to_string()),
            value,
        });
    };
    while invoked < ops_count || pending.iter().any(Option::is_some) {
        let slot = rng.below(processes as u64) as usize;
        match pending[slot].take() {
            None if invoked < ops_count => {
                let f = *rng.pick(fs);
                let argument = if distinct {
                    letters.next().unwrap().to_string()
                } else {
                    rng.pick(&["a", "b"]).to_string()
                };
                let invoke = if f == "get" {
                    Value::Null
                } else {
                    json!(argument)
                };
                push(
                    &mut records,
                    process_ids[slot],
                    RecordType::Invoke,
                    f,
                    invoke,
                );
                pending[slot] = Some((f, argument, false, String::new()));
                invoked += 1;
            }
            None => {}
            Some((f, argument, false, _)) => {
                match f {
                    "get" => {}
                    "put" => value = argument.clone(),
                    _ => value.push_str(&argument),
                }
                seen.push(value.clone());
                pending[slot] = Some((f, argument, true, value.clone()));
            }
            Some((f, argument, true, output)) => {
                if rng.chance(5) {
                    let invoke = if f == "get" {
                        Value::Null
                    } else {
                        json!(argument)
                    };
                    push(&mut records, process_ids[slot], RecordType::Info, f, invoke);
                    process_ids[slot] = next_process;
                    next_process += 1;
                } else {
                    let output = if f == "get" {
                        json!(output)
                    } else {
                        json!(argument)
                    };
                    push(&mut records, process_ids[slot], RecordType::Ok, f, output);
                }
            }
        }
    }
    if rng.chance(50) {
        let gets: Vec<usize> = (0..records.len())
            .filter(|&at| records[at].f == "get" && records[at].kind == RecordType::Ok)
            .collect();
        if !gets.is_empty() {
            let at = *rng.pick(&gets);
            let current = records[at].value.as_str().unwrap_or("").to_string();
            let replacement = if rng.chance(50) || current.is_empty() {
                rng.pick(&seen).clone()
            } else {
                let drop = rng.below(current.len() as u64) as usize;
                format!("{}{}", &current[..drop], &current[drop + 1..])
            };
            records[at].value = json!(replacement);
        }
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

/// Checks the one-key kv history `text` with and without supply pruning, asserts both agree
/// with brute force, and returns whether it is linearizable.
fn kv_check_agrees_with_brute_force(kv: &model::Kv, text: &str) -> bool {
    let history = parse_jsonl(text, "kv execution").unwrap();
    let report = check(&history, &options_for("kv")).unwrap();
    let expected = brute_force(kv, &history, &Some("k".to_string()));
    let without_supply = CheckOptions {
        supply_after_steps: u64::MAX,
        ..options_for("kv")
    };
    assert_eq!(
        check(&history, &without_supply).unwrap().verdict,
        report.verdict,
        "supply pruning changed the verdict of:\n{text}"
    );
    let verdict = if expected {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    assert_eq!(
        report.verdict,
        verdict,
        "history:\n{text}\n{}",
        report.explanation_text()
    );
    expected
}

/// Growth pruning (kv: a pending get whose value the string can no longer reach drops the
/// configuration) must never change a verdict: many clients, so many gets are pending at once.
#[test]
fn kv_dead_states_agree_with_brute_force() {
    // Many puts among concurrent appends: the appends a put overwrites are what the search's
    // dead states merge, and a stale or reordered get must still be caught.
    let mut rng = Rng(0x5eed_00d5);
    let kv = model::Kv::new(None).unwrap();
    let mut verdicts = [0usize; 2];
    for round in 0..800 {
        let processes = 3 + round % 5;
        let ops_count = 6 + round % 6;
        let text = perturbed_kv_execution_of(
            processes,
            ops_count,
            round % 4 != 0,
            &["get", "get", "append", "append", "put", "put"],
            &mut rng,
        );
        let expected = kv_check_agrees_with_brute_force(&kv, &text);
        verdicts[usize::from(expected)] += 1;
    }
    assert!(
        verdicts[0] > 50 && verdicts[1] > 50,
        "{verdicts:?} (invalid, valid)"
    );
}

#[test]
fn kv_growth_pruning_agrees_with_brute_force() {
    let mut rng = Rng(0x5eed_0007);
    let kv = model::Kv::new(None).unwrap();
    let mut verdicts = [0usize; 2];
    for round in 0..600 {
        let processes = 2 + round % 5;
        let ops_count = 4 + round % 7;
        let text = perturbed_kv_execution(processes, ops_count, round % 3 != 0, &mut rng);
        let expected = kv_check_agrees_with_brute_force(&kv, &text);
        verdicts[usize::from(expected)] += 1;
    }
    assert!(
        verdicts[0] > 50 && verdicts[1] > 50,
        "{verdicts:?} (invalid, valid)"
    );
}

/// `text` (a jsonl kv history) with every letter of every string value replaced by its
/// token in `tokens` (a..z in order): multi-byte append texts, some of them prefixes of
/// others, so supply pruning meets both unique and ambiguous splits of a get's value.
fn with_tokens(text: &str, tokens: &[&str]) -> String {
    let map = |letters: &str| -> String {
        letters
            .bytes()
            .map(|letter| tokens[usize::from(letter - b'a') % tokens.len()])
            .collect()
    };
    text.lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            if let Some(Value::String(letters)) = record.get("value").cloned() {
                record["value"] = json!(map(&letters));
            }
            record.to_string() + "\n"
        })
        .collect()
}

/// Supply pruning (a reset whose value a get extends by pieces no unlinearized append can
/// supply is not that get's base) must never change a verdict: many clients and puts, so many
/// appends are concurrent with a put, with append texts whose split is unique (distinct
/// two-letter tokens) and texts where one is a prefix of another (the pruning must stand
/// down).
#[test]
fn kv_supply_pruning_agrees_with_brute_force() {
    let mut rng = Rng(0x5eed_5a99);
    let kv = model::Kv::new(None).unwrap();
    let token_sets: [&[&str]; 3] = [
        &[
            "ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st", "uv", "wx",
        ],
        &["a", "ab", "b", "ba", "abc", "c"],
        &["xy", "yx", "x", "yy"],
    ];
    let mut verdicts = [0usize; 2];
    for round in 0..900 {
        let processes = 3 + round % 6;
        let ops_count = 6 + round % 6;
        let letters = perturbed_kv_execution_of(
            processes,
            ops_count,
            round % 5 != 0,
            &["get", "get", "append", "append", "append", "put"],
            &mut rng,
        );
        let text = with_tokens(&letters, token_sets[round % token_sets.len()]);
        let expected = kv_check_agrees_with_brute_force(&kv, &text);
        verdicts[usize::from(expected)] += 1;
    }
    assert!(
        verdicts[0] > 80 && verdicts[1] > 80,
        "{verdicts:?} (invalid, valid)"
    );
}

/// A counter run by `processes` concurrent clients: each op takes effect at one instant
/// between its invoke and completion, except adds that time out (info), which take effect at
/// some later instant or never, as after a power loss. Deltas are drawn from `deltas`; some
/// writes and cas (`resets_percent`) are mixed in. Half the time one ok output is then
/// perturbed (a read or a reported total off by a delta), so both verdicts occur.
fn counter_execution_with_in_doubt(
    processes: usize,
    ops_count: usize,
    deltas: &[i64],
    resets_percent: u64,
    rng: &mut Rng,
) -> String {
    let mut records: Vec<HistoryRecord> = Vec::new();
    let mut value = 0i64;
    // Per process: (f, invoke value, output once the effect is taken).
    type Pending<'f> = Option<(&'f str, Value, Option<(bool, Value)>)>;
    let mut pending: Vec<Pending> = vec![None; processes];
    let mut process_ids: Vec<u64> = (0..processes as u64).collect();
    let mut next_process = processes as u64;
    let mut late_deltas: Vec<i64> = Vec::new();
    let mut invoked = 0;
    let push = |records: &mut Vec<HistoryRecord>,
                process: u64,
                kind: RecordType,
                f: &str,
                value: Value| {
        records.push(HistoryRecord {
            index: records.len() as u64,
            time: records.len() as u64 * 1000,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: None,
            value,
        });
    };
    while invoked < ops_count || pending.iter().any(Option::is_some) {
        if !late_deltas.is_empty() && rng.chance(20) {
            let at = rng.below(late_deltas.len() as u64) as usize;
            value = value.wrapping_add(late_deltas.swap_remove(at));
        }
        let slot = rng.below(processes as u64) as usize;
        match pending[slot].take() {
            None if invoked < ops_count => {
                let roll = rng.below(100);
                let (f, invoke) = if roll < resets_percent / 2 {
                    ("write", json!(*rng.pick(deltas)))
                } else if roll < resets_percent {
                    let old = if rng.chance(50) {
                        value
                    } else {
                        *rng.pick(deltas)
                    };
                    ("cas", json!([old, *rng.pick(deltas)]))
                } else if roll < resets_percent + 35 {
                    ("read", Value::Null)
                } else {
                    ("add", json!(*rng.pick(deltas)))
                };
                push(
                    &mut records,
                    process_ids[slot],
                    RecordType::Invoke,
                    f,
                    invoke.clone(),
                );
                pending[slot] = Some((f, invoke, None));
                invoked += 1;
            }
            None => {}
            Some((f, invoke, None)) => {
                if f == "add" && rng.chance(40) {
                    // Times out before taking effect: it may take effect later, or never.
                    push(
                        &mut records,
                        process_ids[slot],
                        RecordType::Info,
                        f,
                        invoke.clone(),
                    );
                    if rng.chance(50) {
                        late_deltas.push(invoke.as_i64().unwrap());
                    }
                    process_ids[slot] = next_process;
                    next_process += 1;
                    continue;
                }
                let result = match f {
                    "read" => (true, json!(value)),
                    "write" => {
                        value = invoke.as_i64().unwrap();
                        (true, invoke.clone())
                    }
                    "cas" => {
                        let ok = value == invoke[0].as_i64().unwrap();
                        if ok {
                            value = invoke[1].as_i64().unwrap();
                        }
                        (ok, invoke.clone())
                    }
                    _ => match value.checked_add(invoke.as_i64().unwrap()) {
                        Some(after) => {
                            value = after;
                            // Our store reports the total; Jepsen's counters only the delta.
                            if rng.chance(50) {
                                (true, json!([invoke, after]))
                            } else {
                                (true, invoke.clone())
                            }
                        }
                        None => (false, invoke.clone()),
                    },
                };
                pending[slot] = Some((f, invoke, Some(result)));
            }
            Some((f, _, Some((ok, output)))) => {
                let kind = if ok { RecordType::Ok } else { RecordType::Fail };
                push(&mut records, process_ids[slot], kind, f, output);
            }
        }
    }
    if rng.chance(50) {
        let observed: Vec<usize> = (0..records.len())
            .filter(|&at| {
                records[at].kind == RecordType::Ok
                    && (records[at].f == "read" || records[at].value.is_array())
            })
            .collect();
        if !observed.is_empty() {
            let at = *rng.pick(&observed);
            let shift = *rng.pick(deltas);
            let record = &mut records[at];
            if record.f == "read" {
                record.value = json!(record.value.as_i64().unwrap().wrapping_add(shift));
            } else {
                let total = record.value[1].as_i64().unwrap().wrapping_add(shift);
                record.value = json!([record.value[0].clone(), total]);
            }
        }
    }
    records
        .iter()
        .map(|record| serde_json::to_string(record).unwrap() + "\n")
        .collect()
}

/// The search defers a counter's in-doubt adds to just before an op that observes the value,
/// and takes one only when the pending ones may sum to what such an op needs (see `search`):
/// its verdicts must be those of a brute force, with small, signed, large and overflowing
/// deltas (no deferral then), writes and cas among the adds, and many in-doubt adds.
#[test]
fn counter_deferral_agrees_with_brute_force() {
    const ROUNDS: usize = 300;
    let delta_sets: &[&[i64]] = &[
        &[1, 2, 3],
        &[1, 1, 2, 5],
        &[-3, -1, 2, 4],
        &[-2, 2, 3],
        &[7, 1 << 40, -(1 << 40), 13],
        &[i64::MAX - 1, 1, 2, -3],
    ];
    let counter = model::Counter::new(None).unwrap();
    let mut rng = Rng(0x5eed_00ad);
    for (set, deltas) in delta_sets.iter().enumerate() {
        let mut verdicts = [0usize; 2];
        let mut in_doubt_adds = 0;
        for round in 0..ROUNDS {
            let processes = 2 + round % 4;
            let ops_count = 5 + round % 6;
            let resets_percent = [0, 0, 10, 25][round % 4];
            let text = counter_execution_with_in_doubt(
                processes,
                ops_count,
                deltas,
                resets_percent,
                &mut rng,
            );
            let history = parse_jsonl(&text, "counter execution").unwrap();
            in_doubt_adds += history
                .ops
                .iter()
                .filter(|op| op.outcome == Outcome::Info)
                .count();
            let report = check(&history, &options_for("counter")).unwrap();
            let expected = brute_force(&counter, &history, &None);
            assert_eq!(
                report.verdict,
                if expected {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                },
                "deltas {deltas:?}, history:\n{text}\n{}",
                report.explanation_text()
            );
            verdicts[usize::from(expected)] += 1;
        }
        assert!(
            verdicts[0] > 30 && verdicts[1] > 30,
            "deltas set {set}: {verdicts:?} (invalid, valid)"
        );
        assert!(
            in_doubt_adds > 300,
            "deltas set {set}: {in_doubt_adds} in-doubt adds"
        );
    }
}
