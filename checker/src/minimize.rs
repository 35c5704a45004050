//! The smallest explanation of a violation: a set of an invalid object's `ok` ops that cannot
//! all be ordered even when every other op is relaxed to "may have taken effect at any time
//! after its invoke, or never" (as an `info` op). Relaxing only adds linearizations, so a
//! relaxed history that is still not linearizable proves the original is not either, and the
//! ops kept are a self-contained anomaly (two successful cas from one old value: a lost
//! update), whatever the model. The set is found with the search itself as the oracle, by
//! delta debugging (Zeller's ddmin, complement steps): drop chunks of the kept ops while the
//! rest still fails, refining the chunks when none can go. Each try and the whole
//! minimisation have step budgets, both a multiple of the steps of the search that found the
//! violation (with floors), so the result depends on step counts, not on time (the
//! check's own deadline and memory limit still stop it); when no try succeeds the caller
//! explains the object as a whole.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicU8};

use crate::check::{assemble, compile_ops};
use crate::deadline::Deadline;
use crate::history::{op_number, Event, History, Outcome};
use crate::model::Model;
use crate::search::{Budget, Progress, Search, SearchInput, SearchResult};

/// Search steps the whole minimisation may take, at least and at most; in between, a
/// multiple of the steps the search that found the violation took (`STEPS_PER_SEARCH_STEP`),
/// so that explaining never costs much more than deciding: most tries relax ops to "in
/// doubt", which makes their searches far larger than the original one. The floor is what
/// small objects need to reach their few-op cores; a floor of 50k made the explanation of a
/// 2k-step violation in a 20k-op kv history cost 3x the whole check, and those tries never
/// shrank the object anyway (half of its appends in doubt is a search far past any budget).
const STEPS_IN_ALL_MIN: u64 = 6_000;
const STEPS_IN_ALL_MAX: u64 = 1_000_000;
const STEPS_PER_SEARCH_STEP: u64 = 4;
/// Search steps one try may take, at least and at most; in between the same multiple of the
/// original search's steps: a try that needs more counts as "still linearizable". Without a
/// bound tied to the original search, the first try that relaxed half of a kv object's
/// appends (2^k possible strings) took the whole budget by itself: Porcupine's c50-bad kv
/// log was explained by a 207-op object after 10k steps, and is now by its 2-op core. Over
/// the 90 invalid corpus histories the cores shrank in 47 and grew in 14 (none that had
/// fewer than 7 ops), 3707 -> 2410 ops in all, with a floor of 6k steps in all, not 10k.
const STEPS_PER_TRY_MIN: u64 = 1_000;
const STEPS_PER_TRY_MAX: u64 = 50_000;

/// The minimisation's step budgets after a search of `search_steps` steps found the
/// violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StepBudget {
    pub in_all: u64,
    pub per_try: u64,
}

impl StepBudget {
    pub(crate) fn after(search_steps: u64) -> StepBudget {
        let scaled = search_steps.saturating_mul(STEPS_PER_SEARCH_STEP);
        StepBudget {
            in_all: scaled.clamp(STEPS_IN_ALL_MIN, STEPS_IN_ALL_MAX),
            per_try: scaled.clamp(STEPS_PER_TRY_MIN, STEPS_PER_TRY_MAX),
        }
    }
}

pub(crate) struct Core<M: Model> {
    /// The relaxed object the explanation is of, and its ops' positions in `history`.
    pub input: SearchInput<M>,
    pub positions: Vec<usize>,
    pub longest_prefix: Vec<u32>,
    /// The object's ops as recorded (not relaxed), for the explanation to show.
    pub history: History,
    /// The core ops, as positions in the checked history, in history order.
    pub core_positions: Vec<usize>,
    /// Their history indexes.
    pub core_indexes: BTreeSet<u64>,
}

/// The smallest set found of the object's ops (at `object_positions` of `history`) that
/// cannot be ordered; `None` when not even the whole object fails within the step budget.
pub(crate) fn smallest_core<M: Model>(
    model: &M,
    object_positions: &[usize],
    history: &History,
    check_budget: &Budget,
    steps: StepBudget,
) -> Option<Core<M>> {
    let steps_in_all = steps.in_all;
    // The object alone: its ops renumbered 0.., its events in real-time order.
    let mut local = vec![usize::MAX; history.ops.len()];
    for (number, &position) in object_positions.iter().enumerate() {
        local[position] = number;
    }
    let object = History {
        source_name: history.source_name.clone(),
        ops: object_positions
            .iter()
            .map(|&position| history.ops[position].clone())
            .collect(),
        events: history
            .events
            .iter()
            .filter_map(|&event| match local[event.op()] {
                usize::MAX => None,
                number if event.is_call() => Some(Event::Call(op_number(number))),
                number => Some(Event::Return(op_number(number))),
            })
            .collect(),
        independent: history.independent,
        format: history.format,
    };
    let budget = Budget {
        deadline: check_budget.deadline,
        memory_limit_bytes: check_budget.memory_limit_bytes,
        memory_in_use: AtomicU64::new(0),
        peak_memory: AtomicU64::new(0),
        exhausted: AtomicU8::new(0),
        supply_after_steps: check_budget.supply_after_steps,
    };
    let steps_spent = std::cell::Cell::new(0u64);
    // Each op compiled once as recorded and, for ok ops, once relaxed; tries only pick.
    let all: Vec<usize> = (0..object.ops.len()).collect();
    let deadline = Deadline(check_budget.deadline);
    let recorded = compile_ops(model, &object, &all, &deadline).ok()??;
    let relaxed: Vec<Option<M::Op>> = object
        .ops
        .iter()
        .map(|op| {
            if !matches!(op.outcome, Outcome::Ok(_)) {
                return Ok(None);
            }
            let mut in_doubt = op.clone();
            in_doubt.outcome = Outcome::Info;
            model.compile(&in_doubt).map(Some)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    model.compiled_all();
    let arguments: Vec<String> = object
        .ops
        .iter()
        .map(|op| op.invoke_value.to_string())
        .collect();
    const IN_DOUBT: Outcome = Outcome::Info;
    // Tries the object with only `kept` (local numbers of ok ops) certain to have happened.
    let attempt = |kept: &[usize]| -> Option<(SearchInput<M>, Vec<usize>, Vec<u32>)> {
        if steps_spent.get() >= steps_in_all || deadline.passed() {
            return None;
        }
        let mut is_kept = vec![false; object.ops.len()];
        for &number in kept {
            is_kept[number] = true;
        }
        let is_relaxed = |number: usize| relaxed[number].is_some() && !is_kept[number];
        // Ops invoked after the last certain return could only come after every kept op:
        // they never help, so they are left out.
        let last_return = object
            .events
            .iter()
            .rposition(|event| !event.is_call() && is_kept[event.op()])?;
        let included: Vec<usize> = object.events[..last_return]
            .iter()
            .filter(|event| event.is_call())
            .map(|event| event.op())
            .collect();
        let compiled = included
            .iter()
            .map(|&number| match &relaxed[number] {
                Some(op) if !is_kept[number] => op.clone(),
                _ => recorded[number].clone(),
            })
            .collect();
        let (input, positions) = assemble(
            model,
            &object,
            included,
            &object.events,
            compiled,
            |number| {
                if is_relaxed(number) {
                    &IN_DOUBT
                } else {
                    &object.ops[number].outcome
                }
            },
            |number| arguments[number].clone(),
        );
        let mut search = Search::new(model, &input);
        let budget_steps = steps.per_try.min(steps_in_all - steps_spent.get());
        let progress = search.run(budget_steps, &budget);
        // Preparing a try costs about a step per op: counted, so that many tries of a large
        // object stay within the budget too.
        steps_spent.set(steps_spent.get() + search.stats().steps + positions.len() as u64);
        let prefix = match progress {
            Progress::Done(SearchResult::NotLinearizable { longest_prefix }) => longest_prefix,
            _ => return None,
        };
        drop(search);
        Some((input, positions, prefix))
    };
    let mut kept: Vec<usize> = (0..object.ops.len())
        .filter(|&number| matches!(object.ops[number].outcome, Outcome::Ok(_)))
        .collect();
    let mut best = attempt(&kept)?;
    let mut granularity = 2usize;
    'refine: while kept.len() >= 2 {
        let chunk = kept.len().div_ceil(granularity);
        let mut reduced = false;
        for start in (0..kept.len()).step_by(chunk) {
            let end = (start + chunk).min(kept.len());
            let complement: Vec<usize> =
                kept[..start].iter().chain(&kept[end..]).copied().collect();
            if complement.is_empty() {
                continue;
            }
            if let Some(found) = attempt(&complement) {
                kept = complement;
                best = found;
                granularity = (granularity - 1).max(2);
                reduced = true;
                break;
            }
            if steps_spent.get() >= steps_in_all {
                break 'refine;
            }
        }
        if !reduced {
            if granularity >= kept.len() {
                break;
            }
            granularity = (granularity * 2).min(kept.len());
        }
    }
    let (input, positions, longest_prefix) = best;
    let core_positions: Vec<usize> = kept
        .iter()
        .map(|&number| object_positions[number])
        .collect();
    let core_indexes = core_positions
        .iter()
        .map(|&position| history.ops[position].index)
        .collect();
    assert!(
        !core_positions.is_empty(),
        "a history with no certain op is linearizable"
    );
    Some(Core {
        input,
        positions,
        longest_prefix,
        history: object,
        core_positions,
        core_indexes,
    })
}
