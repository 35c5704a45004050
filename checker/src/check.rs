//! `check`: picks the model, splits the history into independent objects by key
//! (P-compositionality), runs one search per object on a few threads within the budget, and
//! assembles the report. Verdicts and explanations do not depend on thread timing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deadline::{Deadline, Phase, CHECK_EVERY};
use crate::explain::explain;
use crate::history::{Event, History, Name, Outcome, Output};
use crate::model::{self, Keyed, Model};
use crate::report::{
    CheckReport, Linearization, LinearizedStep, OpSummary, PartitionReport, PrefixReached, Verdict,
    PREFIX_REACHED_SHOWN, STATE_TEXT_CHARS,
};
use crate::search::{
    Budget, Exhausted, Progress, Search, SearchInput, SearchResult, SearchStats, NO_GROUP, NO_TWINS,
};

#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// "counter", "register", "cas-register", ... (see `model::MODEL_NAMES`).
    pub model: String,
    /// `--init JSON`; for keyed histories an object gives each key its own initial state
    /// (except for multi-register, whose state is an object).
    pub init: Option<Value>,
    /// false = `--no-partition`: the whole history is one object whose state is the map.
    pub partition: bool,
    pub time_limit: Option<Duration>,
    pub memory_limit_bytes: Option<u64>,
    /// Searches run at once (independent partitions); at least 1.
    pub threads: usize,
    /// Report each object's linearization (or longest linearizable prefix) with the state
    /// after every op (`PartitionReport::linearization`), for views of the whole history.
    pub linearization: bool,
    /// Steps an object's search takes before it prepares supply pruning (see `supply`); 0
    /// prepares it at once, as the tests do so that small histories exercise it.
    pub supply_after_steps: u64,
}

impl CheckOptions {
    /// Defaults fit for CI: 60 s, 1 GiB, one thread per core.
    pub fn new(model: &str) -> CheckOptions {
        CheckOptions {
            model: model.to_string(),
            init: None,
            partition: true,
            time_limit: Some(Duration::from_secs(60)),
            memory_limit_bytes: Some(1024 * 1024 * 1024),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            linearization: false,
            supply_after_steps: crate::supply::PREPARE_AFTER_STEPS,
        }
    }
}

/// The history does not fit the model, or the options are wrong (exit 254).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    UnknownModel(String),
    BadInit(String),
    /// An operation the model cannot read.
    Op {
        /// 1-based line of the invoke record (0: the format has no lines).
        line: usize,
        index: u64,
        process: u64,
        problem: String,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::UnknownModel(name) => {
                let names: Vec<&str> = model::MODEL_NAMES.iter().map(|(name, _)| *name).collect();
                write!(
                    formatter,
                    "unknown model {name:?} (known: {})",
                    names.join(", ")
                )
            }
            CheckError::BadInit(problem) => write!(formatter, "bad --init: {problem}"),
            CheckError::Op {
                line,
                index,
                process,
                problem,
            } => {
                // A file name goes in front (`file:` + this): the line reads like every other
                // input error, `file:line: problem`.
                if *line > 0 {
                    write!(formatter, "{line}: ")?;
                }
                write!(
                    formatter,
                    "op at index {index} (process {process}): {}",
                    crate::history::text::bound_problem(problem)
                )
            }
        }
    }
}

impl std::error::Error for CheckError {}

/// Models whose state may be absent (null): a format's absent initial state applies to them.
const ABSENT_CAPABLE: [&str; 2] = ["register", "cas-register"];
/// Models whose default initial state is 0, which a read of null contradicts.
const ZERO_BASED: [&str; 3] = ["register", "cas-register", "counter"];

/// Decides whether `history` is linearizable under `options.model`. Without `options.init`,
/// a register starts as the history's format defines (a Porcupine etcd log: absent), else as
/// the model's default.
pub fn check(history: &History, options: &CheckOptions) -> Result<CheckReport, CheckError> {
    let format_init = history
        .format
        .and_then(|format| format.default_init())
        .filter(|_| options.init.is_none() && ABSENT_CAPABLE.contains(&options.model.as_str()));
    let mut report = match format_init {
        Some(init) => {
            let mut options = options.clone();
            options.init = Some(init);
            check_with_init(history, &options)?
        }
        None => check_with_init(history, options)?,
    };
    let init_defaulted =
        options.init.is_none() && history.format.and_then(|f| f.default_init()).is_none();
    if let Some(counterexample) = report.counterexample.as_mut() {
        let reads_null = history.ops.iter().any(|op| {
            op.key.as_deref() == counterexample.key.as_deref()
                && op.f == "read"
                && op.outcome == Outcome::Ok(Output::Known(Value::Null))
        });
        if init_defaulted && reads_null && ZERO_BASED.contains(&options.model.as_str()) {
            counterexample.notes.push(
                "No --init was given, so the object starts at 0, yet a read returned null: if the \
                 system's keys start absent, check again with --init null."
                    .to_string(),
            );
            counterexample.text = counterexample.render_text(&options.model);
        }
    }
    Ok(report)
}

fn check_with_init(history: &History, options: &CheckOptions) -> Result<CheckReport, CheckError> {
    match options.model.as_str() {
        "register" => run(
            history,
            options,
            |init| model::Register::new(init, false),
            true,
        ),
        "cas-register" => run(
            history,
            options,
            |init| model::Register::new(init, true),
            true,
        ),
        "counter" => run(history, options, model::Counter::new, true),
        "kv" => run(history, options, model::Kv::new, true),
        "multi-register" => run(history, options, model::MultiRegister::new, false),
        "mutex" => run(history, options, model::Mutex::new, true),
        "set" => run(history, options, model::Set::new, true),
        "unordered-queue" => run(history, options, model::UnorderedQueue::new, true),
        "fifo-queue" => run(history, options, model::FifoQueue::new, true),
        other => Err(CheckError::UnknownModel(other.to_string())),
    }
}

/// One object to search: its key, its model and its compiled ops.
pub(crate) struct Job<M: Model> {
    key: Option<String>,
    model: M,
    input: SearchInput<M>,
    /// Local op number -> position in `history.ops`.
    positions: Vec<usize>,
    /// Every op of the object (fail and dropped ones too), as positions in `history.ops`.
    object_positions: Vec<usize>,
}

struct JobOutcome {
    report: PartitionReport,
    result: SearchResult,
    /// For an undecided object: the longest linearizable prefix reached (local op numbers).
    prefix_reached: Option<Vec<u32>>,
    /// For a linearizable object: the linearization found (local op numbers).
    linearization: Option<Vec<u32>>,
}

fn run<M, F>(
    history: &History,
    options: &CheckOptions,
    make: F,
    per_key_init: bool,
) -> Result<CheckReport, CheckError>
where
    M: Model + Send,
    M::State: Send + Sync,
    F: Fn(Option<&Value>) -> Result<M, String>,
{
    let started = Instant::now();
    let budget = Budget {
        deadline: options.time_limit.map(|limit| started + limit),
        memory_limit_bytes: options.memory_limit_bytes,
        memory_in_use: AtomicU64::new(0),
        peak_memory: AtomicU64::new(0),
        exhausted: AtomicU8::new(0),
        supply_after_steps: options.supply_after_steps,
    };
    let init_for = |key: &Option<String>| -> Result<M, CheckError> {
        let init = match (options.init.as_ref(), key) {
            (Some(Value::Object(per_key)), Some(key)) if per_key_init => per_key.get(key),
            (Some(Value::Object(_)), None) if per_key_init => None,
            (init, _) => init,
        };
        make(init).map_err(CheckError::BadInit)
    };
    let deadline = Deadline(budget.deadline);
    // Objects by key; ops of one key share a number so the key is looked up once per op.
    let mut groups: BTreeMap<Option<Name>, Vec<usize>> = BTreeMap::new();
    for (position, op) in history.ops.iter().enumerate() {
        if position % CHECK_EVERY == 0 && deadline.passed() {
            return Ok(cut_report(options, history, started, Phase::Partitioning));
        }
        match groups.get_mut(&op.key) {
            Some(positions) => positions.push(position),
            None => {
                groups.insert(op.key.clone(), vec![position]);
            }
        }
    }
    let mut report = CheckReport::new(&options.model, history.ops.len());
    let mut counterexample = None;
    // Threads for a small history cost more to start than they save (verdicts do not depend
    // on how many run).
    let threads = if history.ops.len() < PARALLEL_MIN_OPS {
        1
    } else {
        options.threads.max(1)
    };
    if options.partition || groups.len() <= 1 {
        if groups.is_empty() {
            groups.insert(None, Vec::new());
        }
        let events = events_by_object(history, groups.values().map(Vec::as_slice));
        let mut objects = Vec::with_capacity(groups.len());
        for ((key, positions), events) in groups.into_iter().zip(events) {
            let key = key.map(String::from);
            objects.push(Object {
                model: init_for(&key)?,
                key,
                positions,
                events,
            });
        }
        let Some(searched) = run_objects(
            objects,
            history,
            &deadline,
            &budget,
            threads,
            options.linearization,
        )?
        else {
            return Ok(cut_report(options, history, started, Phase::Partitioning));
        };
        // Of several invalid objects, the one whose violation the search found in the fewest
        // steps (the first in key order among equals) is explained: its explanation costs the
        // least (minimisation's budget follows the search's steps) and is usually the
        // simplest. Step counts, not time, so the choice does not depend on the machine.
        let explained = searched
            .iter()
            .enumerate()
            .filter(|(_, (outcome, _))| {
                matches!(outcome.result, SearchResult::NotLinearizable { .. })
            })
            .min_by_key(|&(number, (outcome, _))| (outcome.report.search_steps, number))
            .map(|(number, _)| number);
        for (number, (outcome, job)) in searched.into_iter().enumerate() {
            if let (SearchResult::NotLinearizable { longest_prefix }, true) =
                (&outcome.result, Some(number) == explained)
            {
                let job = job.as_ref().expect("an invalid object's job is kept");
                counterexample = Some(explain_smallest(
                    job,
                    longest_prefix,
                    history,
                    &options.model,
                    &budget,
                    outcome.report.search_steps,
                ));
            }
            let order = options.linearization.then(|| {
                let job = job
                    .as_ref()
                    .expect("jobs are kept when linearizations are asked for");
                linearization_of(&outcome, job, history)
            });
            let mut partition = with_prefix(outcome, job.as_ref(), history);
            partition.linearization = order;
            report.partitions.push(partition);
        }
    } else {
        let keys: Vec<Option<String>> = groups
            .keys()
            .map(|key| key.as_ref().map(|key| key.to_string()))
            .collect();
        let mut inits = BTreeMap::new();
        for key in &keys {
            inits.insert(key.clone(), init_for(key)?.init_state());
        }
        let keyed = Keyed::new(init_for(&None)?, keys, |key| inits[key].clone());
        let Some(job) = prepare(
            keyed,
            None,
            history,
            (0..history.ops.len()).collect(),
            &history.events,
            &deadline,
        )?
        else {
            return Ok(cut_report(options, history, started, Phase::Partitioning));
        };
        let outcome = run_jobs(std::slice::from_ref(&job), &budget, 1)
            .pop()
            .expect("one job, one outcome");
        if let SearchResult::NotLinearizable { longest_prefix } = &outcome.result {
            counterexample = Some(explain_smallest(
                &job,
                longest_prefix,
                history,
                &options.model,
                &budget,
                outcome.report.search_steps,
            ));
        }
        let order = options
            .linearization
            .then(|| linearization_of(&outcome, &job, history));
        let mut partition = with_prefix(outcome, Some(&job), history);
        partition.linearization = order;
        report.partitions.push(partition);
    }
    report.verdict = if report
        .partitions
        .iter()
        .any(|partition| partition.verdict == Verdict::Invalid)
    {
        Verdict::Invalid
    } else if report
        .partitions
        .iter()
        .any(|partition| partition.verdict == Verdict::Unknown)
    {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    if report.verdict == Verdict::Unknown {
        report.cut_phase = Some(Phase::Searching.name().to_string());
        report.unknown_reason = Some(
            match budget.exhausted.load(Ordering::Relaxed) {
                2 => "memory limit",
                _ => "time limit",
            }
            .to_string(),
        );
    }
    report.counterexample = counterexample;
    // Paused searches keep their memory between rounds, so the peak is that of all of them.
    let largest_partition = report
        .partitions
        .iter()
        .map(|partition| partition.memory_bytes)
        .max();
    report.peak_memory_bytes = budget
        .peak_memory
        .load(Ordering::Relaxed)
        .max(largest_partition.unwrap_or(0));
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The explanation of an invalid object: of an op that can never take effect, when the model
/// finds one (`Model::never_legal`); else of the smallest set of its ops found that cannot be
/// ordered (see `minimize`) when that search succeeds within its budget; else of the object.
fn explain_smallest<M: Model>(
    job: &Job<M>,
    longest_prefix: &[u32],
    history: &History,
    model_name: &str,
    budget: &Budget,
    search_steps: u64,
) -> crate::report::Counterexample {
    let explain_object = || {
        explain(
            &job.model,
            &job.key,
            &job.input,
            &job.positions,
            longest_prefix,
            history,
            model_name,
        )
    };
    if let Some((op, reason)) =
        job.model
            .never_legal(&job.model.init_state(), &job.input.ops, &job.input.events)
    {
        let mut counterexample = explain_object();
        crate::explain::mark_never_legal(
            &mut counterexample,
            &history.ops[job.positions[op as usize]],
            reason,
            model_name,
        );
        return counterexample;
    }
    if let Some(core) = crate::minimize::smallest_core(
        &job.model,
        &job.object_positions,
        history,
        budget,
        crate::minimize::StepBudget::after(search_steps),
    ) {
        let mut counterexample = explain(
            &job.model,
            &job.key,
            &core.input,
            &core.positions,
            &core.longest_prefix,
            &core.history,
            model_name,
        );
        let in_core = |op: &OpSummary| core.core_indexes.contains(&op.index);
        counterexample.stuck.retain(|stuck| in_core(&stuck.op));
        counterexample.core = core
            .core_positions
            .iter()
            .map(|&position| OpSummary::from_operation(&history.ops[position]))
            .collect();
        counterexample.text = counterexample.render_text(model_name);
        return counterexample;
    }
    explain_object()
}

/// The order the search found for one object, with the state after each op: the whole
/// linearization, or the longest linearizable prefix.
fn linearization_of<M: Model>(
    outcome: &JobOutcome,
    job: &Job<M>,
    history: &History,
) -> Linearization {
    let (order, complete): (&[u32], bool) = match (&outcome.result, &outcome.linearization) {
        (SearchResult::Linearizable, Some(order)) => (order, true),
        (SearchResult::NotLinearizable { longest_prefix }, _) => (longest_prefix, false),
        _ => (outcome.prefix_reached.as_deref().unwrap_or(&[]), false),
    };
    let mut state = job.model.init_state();
    let steps = order
        .iter()
        .map(|&op| {
            state = job
                .model
                .step(&state, &job.input.ops[op as usize])
                .expect("the search only records orders the model accepts");
            LinearizedStep {
                index: history.ops[job.positions[op as usize]].index,
                state: state_text(&job.model.state_json(&state)),
            }
        })
        .collect();
    Linearization { complete, steps }
}

/// Compact JSON cut to `STATE_TEXT_CHARS` characters.
fn state_text(state: &Value) -> String {
    let text = state.to_string();
    match text.char_indices().nth(STATE_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The partition report, with the longest prefix reached when the object is undecided.
fn with_prefix<M: Model>(
    outcome: JobOutcome,
    job: Option<&Job<M>>,
    history: &History,
) -> PartitionReport {
    let mut report = outcome.report;
    if let Some(prefix) = outcome.prefix_reached {
        let job = job.expect("an undecided object's job is kept");
        let mut state = job.model.init_state();
        for &op in &prefix {
            state = job
                .model
                .step(&state, &job.input.ops[op as usize])
                .expect("the search only records prefixes the model accepts");
        }
        let shown = prefix.len().saturating_sub(PREFIX_REACHED_SHOWN);
        report.longest_prefix = Some(PrefixReached {
            ops_count: prefix.len(),
            must_happen_count: job.input.must_happen.iter().filter(|&&must| must).count(),
            last_ops: prefix[shown..]
                .iter()
                .map(|&op| OpSummary::from_operation(&history.ops[job.positions[op as usize]]))
                .collect(),
            state: job.model.state_json(&state),
        });
    }
    report
}

/// Compiles one object's ops, leaving out those that cannot matter: `fail` ops (they did not
/// happen), ops that may never have happened and change nothing, and observed ops that are
/// legal everywhere and change nothing. An in-doubt op that may have happened in several ways
/// (see `Model::in_doubt_variants`) becomes one op per way, of which at most one is taken.
fn prepare<M: Model>(
    model: M,
    key: Option<String>,
    history: &History,
    positions: Vec<usize>,
    events: &[Event],
    deadline: &Deadline,
) -> Result<Option<Job<M>>, CheckError> {
    let object_positions = positions.clone();
    let Some(compiled_ops) = compile_ops(&model, history, &positions, deadline)? else {
        return Ok(None);
    };
    model.compiled_all();
    if deadline.passed() {
        return Ok(None);
    }
    let (input, positions) = assemble(
        &model,
        history,
        positions,
        events,
        compiled_ops,
        |position| &history.ops[position].outcome,
        |position| history.ops[position].invoke_value.to_string(),
    );
    Ok(Some(Job {
        key,
        model,
        input,
        positions,
        object_positions,
    }))
}

/// Runs `worker` on `threads` threads (at least one), this one among them: each thread that
/// allocates gets its own allocator arena, whose memory stays with the process, so one thread
/// fewer started is one arena fewer.
fn on_threads<F: Fn() + Sync>(threads: usize, worker: F) {
    if threads <= 1 {
        worker();
        return;
    }
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(&worker);
        }
        worker();
    });
}

/// One object of a partitioned history before it is prepared.
struct Object<M> {
    model: M,
    key: Option<String>,
    positions: Vec<usize>,
    events: Vec<Event>,
}

/// An object after the first round: its report's key and op count, what its search left,
/// and its job when something still needs it (see `run_objects`).
struct FirstRound<M: Model> {
    key: Option<String>,
    ops_count: usize,
    job: Option<Job<M>>,
    /// False when the deadline passed while it was being prepared (it was not searched).
    prepared: bool,
    searched: Searched,
}

/// Prepares and searches each object for the first round in one go, on up to `threads`
/// threads, then runs the later rounds (see `run_jobs`) over the objects still undecided.
/// An object decided valid drops its compiled input at once unless `keep_valid` (its
/// linearization is wanted), so that a history of many objects holds the compiled ops of
/// about `threads` of them at a time rather than of all of them. A search still undecided
/// after the first round is dropped too and starts again in the second, since it borrows the
/// job it searches: that repeats `FIRST_ROUND_STEPS` steps of the hard objects only.
/// Outcomes are in the objects' order, with the jobs kept. An error is that of the first
/// object in key order that has one, as on one thread; `None` when the deadline passed while
/// an object was being prepared.
#[allow(clippy::type_complexity)]
fn run_objects<M>(
    objects: Vec<Object<M>>,
    history: &History,
    deadline: &Deadline,
    budget: &Budget,
    threads: usize,
    keep_valid: bool,
) -> Result<Option<Vec<(JobOutcome, Option<Job<M>>)>>, CheckError>
where
    M: Model + Send,
    M::State: Send,
{
    let count = objects.len();
    // The largest objects first, so that the last ones to finish are small.
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&object| std::cmp::Reverse(objects[object].positions.len()));
    let work: Vec<Mutex<Option<Object<M>>>> = objects
        .into_iter()
        .map(|object| Mutex::new(Some(object)))
        .collect();
    let results: Vec<Mutex<Option<Result<FirstRound<M>, CheckError>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let claimed = next.fetch_add(1, Ordering::Relaxed);
        let Some(&object) = order.get(claimed) else {
            return;
        };
        let taken = work[object]
            .lock()
            .expect("no worker panics while holding an object")
            .take()
            .expect("each object is claimed once");
        let ran = first_round(taken, history, deadline, budget, keep_valid);
        *results[object].lock().expect("result lock") = Some(ran);
    };
    on_threads(threads.min(count), worker);
    let mut firsts = Vec::with_capacity(count);
    for result in results {
        firsts.push(
            result
                .into_inner()
                .expect("result lock")
                .expect("every object is run")?,
        );
    }
    // As between any two rounds: once an object is invalid, the others stop undecided, those
    // the deadline stopped while they were prepared too (the verdict is known).
    let any_invalid = firsts.iter().any(|first| {
        matches!(
            first.searched.result,
            Some(SearchResult::NotLinearizable { .. })
        )
    });
    if !any_invalid && firsts.iter().any(|first| !first.prepared) {
        return Ok(None);
    }
    let undecided: Vec<usize> = (0..count)
        .filter(|&object| firsts[object].searched.result.is_none())
        .collect();
    if !any_invalid && !undecided.is_empty() {
        let jobs: Vec<Job<M>> = undecided
            .iter()
            .map(|&object| {
                firsts[object]
                    .job
                    .take()
                    .expect("an undecided object's job is kept")
            })
            .collect();
        let later = search_rounds(&jobs, budget, threads, FIRST_ROUND_STEPS * 2);
        for ((&object, job), searched) in undecided.iter().zip(jobs).zip(later) {
            let first = &mut firsts[object];
            let earlier = std::mem::replace(&mut first.searched.finished, searched.finished);
            // A search the budget stopped before it got past where its first round was keeps
            // what the first round reached, for the report.
            let undecided_again =
                matches!(searched.result, Some(SearchResult::Exhausted(_)) | None);
            if undecided_again && first.searched.finished.stats.steps < earlier.stats.steps {
                first.searched.finished = earlier;
            }
            first.searched.result = searched.result;
            first.searched.elapsed += searched.elapsed;
            first.job = Some(job);
        }
    }
    Ok(Some(
        firsts
            .into_iter()
            .map(|first| {
                let outcome = job_outcome(first.key, first.ops_count, first.searched);
                (outcome, first.job)
            })
            .collect(),
    ))
}

/// Prepares one object and runs its first round (see `run_objects`); not `prepared` when the
/// deadline passed while it was being prepared.
fn first_round<M: Model>(
    object: Object<M>,
    history: &History,
    deadline: &Deadline,
    budget: &Budget,
    keep_valid: bool,
) -> Result<FirstRound<M>, CheckError> {
    let Object {
        model,
        key,
        positions,
        events,
    } = object;
    let ops_count = positions.len();
    let Some(job) = prepare(model, key.clone(), history, positions, &events, deadline)? else {
        return Ok(FirstRound {
            key,
            ops_count,
            job: None,
            prepared: false,
            searched: Searched {
                result: None,
                finished: Finished {
                    stats: SearchStats::default(),
                    prefix_reached: None,
                    linearization: None,
                },
                elapsed: Duration::ZERO,
            },
        });
    };
    drop(events);
    let started = Instant::now();
    let mut search = Search::new(&job.model, &job.input);
    let (result, finished) = match search.run(FIRST_ROUND_STEPS, budget) {
        Progress::Done(result) => {
            let finished = Finished::of(&search, Some(&result));
            (Some(result), finished)
        }
        Progress::Paused => {
            // What it reached stands if another object turns out invalid now.
            let finished = Finished::of(&search, None);
            search.abandon(budget);
            (None, finished)
        }
    };
    let elapsed = started.elapsed();
    let needed = keep_valid || !matches!(result, Some(SearchResult::Linearizable));
    Ok(FirstRound {
        key: job.key.clone(),
        ops_count: job.input.ops.len(),
        job: needed.then_some(job),
        prepared: true,
        searched: Searched {
            result,
            finished,
            elapsed,
        },
    })
}

/// A report for a check the deadline stopped before any search ran.
fn cut_report(
    options: &CheckOptions,
    history: &History,
    started: Instant,
    phase: Phase,
) -> CheckReport {
    let mut report = CheckReport::new(&options.model, history.ops.len());
    report.verdict = Verdict::Unknown;
    report.unknown_reason = Some("time limit".to_string());
    report.cut_phase = Some(phase.name().to_string());
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

/// The events of each object (given by its op positions, each list ascending), in one pass
/// over the history's events.
fn events_by_object<'p>(
    history: &History,
    objects: impl Iterator<Item = &'p [usize]>,
) -> Vec<Vec<Event>> {
    let mut object_of = vec![u32::MAX; history.ops.len()];
    let mut lists = Vec::new();
    for (object, positions) in objects.enumerate() {
        for &position in positions {
            object_of[position] = object as u32;
        }
        lists.push(Vec::with_capacity(positions.len() * 2));
    }
    for event in &history.events {
        let position = event.op();
        if let Some(list) = lists.get_mut(object_of[position] as usize) {
            list.push(*event);
        }
    }
    lists
}

/// The model's ops for the history ops at `positions`.
/// `None` when `deadline` passed first.
pub(crate) fn compile_ops<M: Model>(
    model: &M,
    history: &History,
    positions: &[usize],
    deadline: &Deadline,
) -> Result<Option<Vec<M::Op>>, CheckError> {
    let mut compiled = Vec::with_capacity(positions.len());
    for (number, &position) in positions.iter().enumerate() {
        if number % CHECK_EVERY == CHECK_EVERY - 1 && deadline.passed() {
            return Ok(None);
        }
        let op = &history.ops[position];
        compiled.push(model.compile(op).map_err(|problem| CheckError::Op {
            line: op.line,
            index: op.index,
            process: op.process,
            problem,
        })?);
    }
    Ok(Some(compiled))
}

/// The search input of the ops at `positions` (ascending), compiled as `compiled_ops`, each
/// ending as `outcome` says (which may relax what the history recorded, see `minimize`);
/// `events` holds at least the object's events, in real-time order; `argument_text` gives an
/// op's argument as text, which in-doubt twins share. Ops are compiled to leave out those that
/// cannot matter: `fail` ops (they did not happen), ops that may never have happened and
/// change nothing, and observed ops that are legal everywhere and change nothing. An in-doubt
/// op that may have happened in several ways (see `Model::in_doubt_variants`) becomes one op
/// per way, of which at most one is taken.
pub(crate) fn assemble<'h, M: Model>(
    model: &M,
    history: &'h History,
    positions: Vec<usize>,
    events: &[Event],
    compiled_ops: Vec<M::Op>,
    outcome: impl Fn(usize) -> &'h Outcome,
    argument_text: impl Fn(usize) -> String,
) -> (SearchInput<M>, Vec<usize>) {
    assert_eq!(positions.len(), compiled_ops.len());
    let object_ops: Vec<&M::Op> = compiled_ops.iter().collect();
    let variants: Vec<Vec<M::Op>> = positions
        .iter()
        .zip(&compiled_ops)
        .map(|(&position, compiled)| match outcome(position) {
            Outcome::Info => model.in_doubt_variants(compiled, &object_ops),
            _ => Vec::new(),
        })
        .collect();
    let defers = model.defers_in_doubt(&object_ops);
    drop(object_ops);
    debug_assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    // Number of an op within `positions` -> its first local op; the variants of an op are
    // numbered together.
    let object_positions = positions.clone();
    let number_of = |position: usize| object_positions.binary_search(&position).ok();
    let mut local = vec![u32::MAX; positions.len()];
    // Sized for every op kept once (variants may add a few): growing by doubling held up to
    // twice the memory at the peak, for every object at once.
    let expected = positions.len();
    let mut ops = Vec::with_capacity(expected);
    let mut must_happen = Vec::with_capacity(expected);
    let mut observer = Vec::with_capacity(expected);
    let mut kept_positions = Vec::with_capacity(expected);
    let mut exclusive_group = Vec::with_capacity(expected);
    let mut deferrable = Vec::with_capacity(expected);
    let mut groups_count = 0u32;
    // In-doubt ops by what the model sees of them (see `SearchInput::twin_class`).
    let mut twins: BTreeMap<(&Option<Name>, &str, String), Vec<u32>> = BTreeMap::new();
    for (number, ((position, compiled), variants)) in positions
        .into_iter()
        .zip(compiled_ops)
        .zip(variants)
        .enumerate()
    {
        let op = &history.ops[position];
        let op_outcome = outcome(position);
        if !variants.is_empty() {
            assert!(
                *op_outcome == Outcome::Info,
                "only in-doubt ops have variants"
            );
            let group = groups_count;
            groups_count += 1;
            for variant in variants {
                if !model.changes_state(&variant) {
                    // Taking no effect is the same as not happening, which is always allowed.
                    continue;
                }
                local[number] = local[number].min(ops.len() as u32);
                must_happen.push(false);
                observer.push(false);
                exclusive_group.push(group);
                deferrable.push(false);
                ops.push(variant);
                kept_positions.push(position);
            }
            continue;
        }
        let keep = match op_outcome {
            Outcome::Fail => false,
            Outcome::Info => model.changes_state(&compiled),
            Outcome::Ok(_) => model.changes_state(&compiled) || model.constrains(&compiled),
        };
        if keep {
            if *op_outcome == Outcome::Info {
                twins
                    .entry((&op.key, op.f.as_str(), argument_text(position)))
                    .or_default()
                    .push(ops.len() as u32);
            }
            local[number] = ops.len() as u32;
            must_happen.push(matches!(op_outcome, Outcome::Ok(_)));
            observer.push(!model.changes_state(&compiled));
            exclusive_group.push(NO_GROUP);
            deferrable.push(defers && *op_outcome == Outcome::Info && model.deferrable(&compiled));
            ops.push(compiled);
            kept_positions.push(position);
        }
    }
    let component: Vec<u32> = ops.iter().map(|op| model.component(op)).collect();
    let observes: Vec<bool> = ops.iter().map(|op| model.observes_state(op)).collect();
    let mut twin_class = vec![NO_TWINS; ops.len()];
    let twin_groups = twins.values().filter(|members| members.len() >= 2);
    for (class, members) in twin_groups.enumerate() {
        for &member in members {
            twin_class[member as usize] = class as u32;
        }
    }
    let mut search_events = Vec::with_capacity(ops.len() * 2);
    for event in events {
        let (position, is_call) = (event.op(), event.is_call());
        let Some(number) = number_of(position) else {
            continue;
        };
        let first = local[number] as usize;
        let same_op = (first..ops.len()).take_while(|&op| kept_positions[op] == position);
        for op in same_op {
            // Only ops that certainly happened are bounded by their completion.
            if is_call || must_happen[op] {
                search_events.push((op as u32, is_call));
            }
        }
    }
    (
        SearchInput {
            ops,
            must_happen,
            observer,
            events: search_events,
            twin_class,
            exclusive_group,
            component,
            deferrable,
            observes,
        },
        kept_positions,
    )
}

/// Histories with fewer ops are checked on one thread whatever `CheckOptions::threads` says.
const PARALLEL_MIN_OPS: usize = 5_000;

/// Steps each undecided object gets in the first round; each later round doubles it.
const FIRST_ROUND_STEPS: u64 = 20_000;

struct Slot<'a, M: Model> {
    /// Built by the worker that first runs it, so that building searches is shared too;
    /// dropped once it is done (see `Finished`).
    search: Option<Search<'a, M>>,
    result: Option<SearchResult>,
    finished: Option<Finished>,
    elapsed: Duration,
}

/// What a search left for the report: its result (`None` when it was stopped undecided
/// because another object was invalid), what `Finished` keeps, and its time.
struct Searched {
    result: Option<SearchResult>,
    finished: Finished,
    elapsed: Duration,
}

/// What the report needs of a search that is done, taken as soon as it is: the search itself
/// (its op lists and stack, a few words per op) is dropped then, so that a history of many
/// objects does not hold every finished object's search until the last one ends.
struct Finished {
    stats: SearchStats,
    prefix_reached: Option<Vec<u32>>,
    linearization: Option<Vec<u32>>,
}

impl Finished {
    fn of<M: Model>(search: &Search<'_, M>, result: Option<&SearchResult>) -> Finished {
        Finished {
            stats: search.stats(),
            prefix_reached: match result {
                Some(SearchResult::Exhausted(_)) | None => Some(search.longest_prefix()),
                _ => None,
            },
            linearization: match result {
                Some(SearchResult::Linearizable) => Some(search.path()),
                _ => None,
            },
        }
    }
}

/// `search_rounds` from the first round, with each job's outcome.
fn run_jobs<M>(jobs: &[Job<M>], budget: &Budget, threads: usize) -> Vec<JobOutcome>
where
    M: Model + Send,
    M::State: Send,
{
    let searched = search_rounds(jobs, budget, threads, FIRST_ROUND_STEPS);
    jobs.iter()
        .zip(searched)
        .map(|(job, searched)| job_outcome(job.key.clone(), job.input.ops.len(), searched))
        .collect()
}

/// Runs the searches in rounds: every undecided object gets the same number of steps per
/// round (`first_steps`, doubling each round), on up to `threads` threads. Once a round ends
/// with an invalid object, the others stop undecided: the verdict is known, and because
/// rounds count steps, not time, which objects are invalid by then does not depend on the
/// machine.
fn search_rounds<M>(
    jobs: &[Job<M>],
    budget: &Budget,
    threads: usize,
    first_steps: u64,
) -> Vec<Searched>
where
    M: Model + Send,
    M::State: Send,
{
    let slots: Vec<Mutex<Slot<'_, M>>> = jobs
        .iter()
        .map(|_| {
            Mutex::new(Slot {
                search: None,
                result: None,
                finished: None,
                elapsed: Duration::ZERO,
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&job| std::cmp::Reverse(jobs[job].input.ops.len()));
    let mut round_steps = first_steps;
    loop {
        let undecided: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&job| slots[job].lock().expect("slot lock").result.is_none())
            .collect();
        if undecided.is_empty() {
            break;
        }
        if slots.iter().any(|slot| {
            matches!(
                slot.lock().expect("slot lock").result,
                Some(SearchResult::NotLinearizable { .. })
            )
        }) {
            break;
        }
        let next_job = AtomicUsize::new(0);
        let worker = || loop {
            let claimed = next_job.fetch_add(1, Ordering::Relaxed);
            let Some(&job) = undecided.get(claimed) else {
                return;
            };
            let mut slot = slots[job]
                .lock()
                .expect("no worker panics while holding a slot");
            let started = Instant::now();
            let search = slot
                .search
                .get_or_insert_with(|| Search::new(&jobs[job].model, &jobs[job].input));
            let progress = search.run(round_steps, budget);
            if let Progress::Done(result) = progress {
                slot.finished = Some(Finished::of(search, Some(&result)));
                slot.search = None;
                slot.result = Some(result);
            }
            slot.elapsed += started.elapsed();
        };
        on_threads(threads.min(undecided.len()), worker);
        round_steps = round_steps.saturating_mul(2);
    }
    slots
        .into_iter()
        .map(|slot| {
            let mut slot = slot.into_inner().expect("slot lock");
            // A search still here was stopped early (another object was invalid). Every
            // search is built in the first round, so none is missing.
            let finished = match (slot.finished, slot.search.take()) {
                (Some(finished), _) => finished,
                (None, Some(search)) => {
                    debug_assert!(slot.result.is_none(), "a done search is taken at once");
                    let finished = Finished::of(&search, None);
                    // Its memory no longer counts against what explaining may use.
                    search.abandon(budget);
                    finished
                }
                (None, None) => {
                    debug_assert!(false, "every search is built in the first round");
                    Finished {
                        stats: SearchStats::default(),
                        prefix_reached: Some(Vec::new()),
                        linearization: None,
                    }
                }
            };
            Searched {
                result: slot.result,
                finished,
                elapsed: slot.elapsed,
            }
        })
        .collect()
}

/// The outcome of one object's search, for its report.
fn job_outcome(key: Option<String>, ops_count: usize, searched: Searched) -> JobOutcome {
    let Finished {
        stats,
        prefix_reached,
        linearization,
    } = searched.finished;
    let (verdict, result, note) = match searched.result {
        Some(SearchResult::Linearizable) => (Verdict::Valid, SearchResult::Linearizable, None),
        Some(result @ SearchResult::NotLinearizable { .. }) => (Verdict::Invalid, result, None),
        Some(SearchResult::Exhausted(kind)) => {
            let limit = match kind {
                Exhausted::Time => "the time limit ran out",
                Exhausted::Memory => "the memory limit ran out",
            };
            (
                Verdict::Unknown,
                SearchResult::Exhausted(kind),
                Some(limit.to_string()),
            )
        }
        None => (
            Verdict::Unknown,
            SearchResult::Exhausted(Exhausted::Time),
            Some("not decided: another object was already found invalid".to_string()),
        ),
    };
    JobOutcome {
        report: PartitionReport {
            key,
            verdict,
            ops_count,
            states_explored: stats.states_explored,
            search_steps: stats.steps,
            elapsed_ms: searched.elapsed.as_millis() as u64,
            memory_bytes: stats.peak_bytes,
            note,
            longest_prefix: None,
            linearization: None,
        },
        result,
        prefix_reached,
        linearization,
    }
}
