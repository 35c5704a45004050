//! Builds the counterexample of an invalid object: the longest linearizable prefix the search
//! found, the state after it, the op whose completion cannot be reached, and for every op that
//! could come next, why it cannot (the model's reason, or that every continuation failed).

use std::collections::BTreeSet;

use crate::history::{History, Operation};
use crate::model::Model;
use crate::report::{Counterexample, OpSummary, StuckOp, Window, PREFIX_SHOWN};
use crate::search::{SearchInput, NO_GROUP};

/// `input` holds the object's compiled ops; `positions` maps them to `history.ops`.
pub(crate) fn explain<M: Model>(
    model: &M,
    key: &Option<String>,
    input: &SearchInput<M>,
    positions: &[usize],
    longest_prefix: &[u32],
    history: &History,
    model_name: &str,
) -> Counterexample {
    let summary = |op: u32| OpSummary::from_operation(&history.ops[positions[op as usize]]);
    let mut state = model.init_state();
    let mut linearized = vec![false; input.ops.len()];
    let mut groups_taken = BTreeSet::new();
    for &op in longest_prefix {
        state = model
            .step(&state, &input.ops[op as usize])
            .expect("the search only records prefixes the model accepts");
        linearized[op as usize] = true;
        groups_taken.insert(input.exclusive_group[op as usize]);
    }
    // The ops that could be linearized next are those called before the first completion of
    // an op that is still pending; that op is the one that blocks.
    let mut candidates = Vec::new();
    let mut blocked = None;
    for &(op, is_call) in &input.events {
        let group = input.exclusive_group[op as usize];
        if linearized[op as usize] || (group != NO_GROUP && groups_taken.contains(&group)) {
            // Done, or another way this in-doubt op may have happened is in the prefix.
            continue;
        }
        if is_call {
            candidates.push(op);
        } else {
            blocked = Some(op);
            break;
        }
    }
    // The ways an in-doubt op may have happened share one line: a legal one if any.
    let mut shown_groups = BTreeSet::new();
    candidates.sort_by_key(|&op| model.step(&state, &input.ops[op as usize]).is_none());
    candidates.retain(|&op| {
        let group = input.exclusive_group[op as usize];
        group == NO_GROUP || shown_groups.insert(group)
    });
    candidates.sort_by_key(|&op| positions[op as usize]);
    let stuck: Vec<StuckOp> = candidates
        .iter()
        .map(|&op| {
            let reason = match model.step(&state, &input.ops[op as usize]) {
                None => model.why_illegal(&state, &input.ops[op as usize]),
                Some(after) => format!(
                    "allowed here (state becomes {}), but no order of the remaining ops works after it",
                    model.state_json(&after)
                ),
            };
            StuckOp { op: summary(op), reason }
        })
        .collect();
    let prefix: Vec<OpSummary> = longest_prefix.iter().map(|&op| summary(op)).collect();
    let omitted = prefix.len().saturating_sub(PREFIX_SHOWN);
    let blocked = blocked.map(summary);
    let mut indexes: Vec<u64> = stuck.iter().map(|stuck| stuck.op.index).collect();
    if let Some(blocked) = &blocked {
        indexes.extend(blocked.completion_index);
    }
    let window = Window {
        first_index: indexes.iter().copied().min().unwrap_or(0),
        last_index: indexes.iter().copied().max().unwrap_or(0),
    };
    let mut counterexample = Counterexample {
        key: key.clone(),
        core: Vec::new(),
        linearized_prefix: prefix[omitted..].to_vec(),
        linearized_prefix_omitted: omitted,
        state: model.state_json(&state),
        stuck,
        blocked,
        never_legal: None,
        window,
        notes: Vec::new(),
        text: String::new(),
    };
    counterexample.text = counterexample.render_text(model_name);
    counterexample
}

/// Makes `counterexample` (of the object's longest prefix found) that of an op that can never
/// take effect (`Model::never_legal`), with the reason: that op alone is the core, it is the
/// op that cannot complete, and the window is around it.
pub(crate) fn mark_never_legal(
    counterexample: &mut Counterexample,
    op: &Operation,
    reason: String,
    model_name: &str,
) {
    let summary = OpSummary::from_operation(op);
    counterexample.window = Window {
        first_index: summary.index,
        last_index: summary.completion_index.unwrap_or(summary.index),
    };
    let never = StuckOp {
        op: summary.clone(),
        reason,
    };
    counterexample.core = vec![summary.clone()];
    counterexample.stuck = vec![never.clone()];
    counterexample.blocked = Some(summary);
    counterexample.never_legal = Some(never);
    counterexample.text = counterexample.render_text(model_name);
}
