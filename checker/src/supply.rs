//! Supply pruning, an addition to growth pruning (see `search`) for models whose state grows
//! by appending bytes between resets (a kv string).
//!
//! Take an `ok` observation g (a get of value V) and a reset R that may enable it (a put whose
//! value is a prefix of V). If R is g's base, the last reset before g in some completion, then
//! the state g sees is R's value followed by the texts of the ops appended after R, in order,
//! so V past R's value is a concatenation of append texts. When no append text is a prefix of
//! another, that split is unique, and each of its pieces needs an append with that text which
//! is not linearized yet (it comes after R, and R is not linearized yet) and was called
//! before g returned (it comes before g). A piece no such append can supply rules R out as
//! g's base. Growth pruning drops a configuration when g cannot be reached from the state
//! without a reset and every reset that may enable g is linearized; with supply pruning, a
//! reset whose pieces cannot all be supplied counts as used up too.
//!
//! This matters with many clients on one key: appends concurrent with a put may be
//! linearized before it, where the put overwrites them, in any of their subsets. Without
//! this check an append a later get shows after the put is only found missing at that get's
//! return, after every subset of the others was tried.
//!
//! Invisible appends. An `ok` append whose text is not a piece of any get's value (split from
//! any base: the initial value or a reset's value that the get's value starts with) is never
//! read: a get after it and before the next reset would show its text as one of the pieces.
//! So it can only happen where no get reads the state. In a dead configuration (see `search`:
//! no remaining get can read the state before some reset), the search takes such an append
//! at once and nothing else: a completion that places it elsewhere, moved to the front, is
//! still a completion (the states it changes until the next reset are read by no `ok` get,
//! and where it was, no `ok` get read the states it changed either). Without this, the
//! appends a put overwrites unread are linearized before it in every subset.
//!
//! The pieces are the first `MAX_PIECES` of each (observation, reset) pair: checking fewer
//! pieces than V has is a weaker condition, so still sound. Multiplicity is ignored (two
//! pieces with one text are satisfied by one append), which also only weakens the check.
//! Preparing it costs a few table lookups per piece, which most searches never repay, so the
//! search prepares it only once it has run `PREPARE_AFTER_STEPS` steps.

use crate::fxhash::FxHashMap;
use crate::model::Model;
use crate::search::{event_positions, SearchInput};

/// Pieces looked at per (observation, reset) pair.
pub(crate) const MAX_PIECES: usize = 64;

/// Steps a search takes before it prepares supply pruning: the searches this pays off for run
/// millions of steps; the rest should not pay for the preparation.
pub(crate) const PREPARE_AFTER_STEPS: u64 = 65_536;

/// A piece no op called in time can supply.
const STARVED: u32 = u32::MAX;

/// Pieces all (observation, reset) pairs of an object may hold together (4 bytes each):
/// beyond it supply pruning is not prepared (thousands of puts of one value enable every get).
const MAX_PIECES_IN_ALL: usize = 4_000_000;

/// Table lookups the invisible-append analysis may make (each hashes a few bytes of a get's
/// value); beyond it every append counts as visible, which forces nothing.
const MAX_VISIBILITY_LOOKUPS: usize = 4_000_000;

/// What supply pruning needs, indexed like growth pruning's enabler lists.
pub(crate) struct Supply {
    /// Per entry of the enabler list (an (observation, reset) pair): the text classes of the
    /// observation's first pieces after the reset's value, at
    /// `piece_classes[piece_starts[e]..piece_starts[e + 1]]`.
    piece_starts: Vec<u32>,
    piece_classes: Vec<u32>,
    /// Per text class (one distinct append text): its appends in call order.
    class_starts: Vec<u32>,
    class_ops: Vec<u32>,
    /// Per op: the indexes of its call and return events (`u32::MAX` when it has no return).
    call_event: Vec<u32>,
    return_event: Vec<u32>,
    /// Per op: an `ok` append no get can read (see the module doc).
    invisible: Vec<bool>,
}

impl Supply {
    /// Supply data for `ops` with real-time order `events`, given growth pruning's enabler
    /// lists (observation `o`'s resets at `enabler_list[enabler_starts[o]..enabler_starts[o +
    /// 1]]`). `None` when the model's appends are not all known bytes or when one append text
    /// is a proper prefix of another (the split of an observation would not be unique).
    pub(crate) fn prepare<M: Model>(
        model: &M,
        input: &SearchInput<M>,
        enabler_starts: &[u32],
        enabler_list: &[u32],
    ) -> Option<Supply> {
        let ops = &input.ops;
        let events = &input.events;
        assert_eq!(
            enabler_starts.len(),
            ops.len() + 1,
            "one enabler range per op"
        );
        let (call_event, return_event) = event_positions(events, ops.len());
        let mut texts: Vec<(&[u8], u32)> = Vec::new();
        for (number, op) in ops.iter().enumerate() {
            if !model.changes_state(op) || model.is_reset(op) {
                continue;
            }
            // An op that changes the state some other way would break the split.
            let bytes = model.appended_bytes(op)?;
            if !bytes.is_empty() {
                texts.push((bytes, number as u32));
            }
        }
        texts.sort_unstable_by(|left, right| {
            left.0
                .cmp(right.0)
                .then(call_event[left.1 as usize].cmp(&call_event[right.1 as usize]))
        });
        let mut by_text: FxHashMap<&[u8], u32> = FxHashMap::default();
        let mut lengths: Vec<usize> = Vec::new();
        let mut class_starts: Vec<u32> = Vec::new();
        let mut class_ops: Vec<u32> = Vec::with_capacity(texts.len());
        for (position, &(bytes, op)) in texts.iter().enumerate() {
            let new_class = position == 0 || texts[position - 1].0 != bytes;
            if new_class {
                // Sorted, a text that is a prefix of others comes right before one of them.
                if position > 0 && bytes.starts_with(texts[position - 1].0) {
                    return None;
                }
                by_text.insert(bytes, class_starts.len() as u32);
                class_starts.push(class_ops.len() as u32);
                lengths.push(bytes.len());
            }
            class_ops.push(op);
        }
        class_starts.push(class_ops.len() as u32);
        lengths.sort_unstable();
        lengths.dedup();
        let mut piece_starts: Vec<u32> = Vec::with_capacity(enabler_list.len() + 1);
        let mut piece_classes: Vec<u32> = Vec::new();
        for (target, op) in ops.iter().enumerate() {
            let entries = enabler_starts[target] as usize..enabler_starts[target + 1] as usize;
            if entries.is_empty() {
                continue;
            }
            let observed = model.observed_bytes(op);
            for &reset in &enabler_list[entries] {
                piece_starts.push(piece_classes.len() as u32);
                let written = model.reset_bytes(&ops[reset as usize]);
                let (Some(observed), Some(written)) = (observed, written) else {
                    continue;
                };
                if !observed.starts_with(written) {
                    continue;
                }
                let mut at = written.len();
                let mut pieces = 0;
                while at < observed.len() && pieces < MAX_PIECES {
                    let found = lengths
                        .iter()
                        .take_while(|&&length| at + length <= observed.len())
                        .find_map(|&length| {
                            by_text
                                .get(&observed[at..at + length])
                                .map(|&class| (class, length))
                        });
                    let Some((class, length)) = found else {
                        piece_classes.push(STARVED);
                        break;
                    };
                    let first_supplier = class_ops[class_starts[class as usize] as usize];
                    if call_event[first_supplier as usize] >= return_event[target] {
                        piece_classes.push(STARVED);
                        break;
                    }
                    piece_classes.push(class);
                    at += length;
                    pieces += 1;
                }
                if piece_classes.len() > MAX_PIECES_IN_ALL {
                    return None;
                }
            }
        }
        piece_starts.push(piece_classes.len() as u32);
        let invisible =
            match visible_classes(model, ops, &by_text, &lengths, class_starts.len() - 1) {
                Some(visible) => {
                    let mut invisible = vec![false; ops.len()];
                    for class in 0..class_starts.len() - 1 {
                        if visible[class] {
                            continue;
                        }
                        let members =
                            class_starts[class] as usize..class_starts[class + 1] as usize;
                        for &op in &class_ops[members] {
                            invisible[op as usize] = input.must_happen[op as usize];
                        }
                    }
                    invisible
                }
                None => vec![false; ops.len()],
            };
        assert_eq!(
            piece_starts.len(),
            enabler_list.len() + 1,
            "one piece range per enabler entry"
        );
        assert!(
            piece_classes.len() < u32::MAX as usize,
            "piece lists fit u32"
        );
        Some(Supply {
            piece_starts,
            piece_classes,
            class_starts,
            class_ops,
            call_event,
            return_event,
            invisible,
        })
    }

    /// Whether `op` is an `ok` append no get can read (see the module doc).
    pub(crate) fn invisible(&self, op: u32) -> bool {
        self.invisible[op as usize]
    }

    /// Whether enabler entry `entry` (a reset that may enable observation `target`) can no
    /// longer be `target`'s base: one of its pieces has no supplier left that was called
    /// before `target` returned, counting `taken` (being linearized now) as linearized.
    pub(crate) fn starved(
        &self,
        entry: usize,
        target: u32,
        taken: u32,
        is_linearized: impl Fn(u32) -> bool,
    ) -> bool {
        let deadline = self.return_event[target as usize];
        let pieces = self.piece_starts[entry] as usize..self.piece_starts[entry + 1] as usize;
        self.piece_classes[pieces].iter().any(|&class| {
            if class == STARVED {
                return true;
            }
            let suppliers = self.class_starts[class as usize] as usize
                ..self.class_starts[class as usize + 1] as usize;
            !self.class_ops[suppliers]
                .iter()
                .take_while(|&&op| self.call_event[op as usize] < deadline)
                .any(|&op| op != taken && !is_linearized(op))
        })
    }

    pub(crate) fn bytes(&self) -> u64 {
        ((self.piece_starts.capacity()
            + self.piece_classes.capacity()
            + self.class_starts.capacity()
            + self.class_ops.capacity()
            + self.call_event.capacity()
            + self.return_event.capacity())
            * 4
            + self.invisible.capacity()) as u64
    }
}

/// Per text class, whether some get may read it: whether it is a piece of some get's value
/// split from a base (the initial value, or any reset's value, that the get's value starts
/// with). Values that are prefixes of others are skipped: from the same base their pieces are
/// the first pieces of the longer value. `None` when the model does not say its initial
/// bytes or the lookups would exceed `MAX_VISIBILITY_LOOKUPS`. Over-approximates (a base is
/// not required to be called in time), which only forces fewer appends.
fn visible_classes<M: Model>(
    model: &M,
    ops: &[M::Op],
    by_text: &FxHashMap<&[u8], u32>,
    lengths: &[usize],
    class_count: usize,
) -> Option<Vec<bool>> {
    let init = model.init_bytes()?;
    let mut values: Vec<&[u8]> = ops
        .iter()
        .filter_map(|op| model.observed_bytes(op))
        .collect();
    values.sort_unstable();
    values.dedup();
    let mut bases: Vec<&[u8]> = ops
        .iter()
        .filter(|op| model.is_reset(op))
        .map(|op| model.reset_bytes(op))
        .collect::<Option<_>>()?;
    bases.push(init);
    bases.sort_unstable();
    bases.dedup();
    let mut base_lengths: Vec<usize> = bases.iter().map(|base| base.len()).collect();
    base_lengths.sort_unstable();
    base_lengths.dedup();
    let mut visible = vec![false; class_count];
    let mut lookups = 0usize;
    for (position, value) in values.iter().enumerate() {
        if values
            .get(position + 1)
            .is_some_and(|next| next.starts_with(value))
        {
            continue;
        }
        for &base_length in base_lengths
            .iter()
            .take_while(|&&length| length <= value.len())
        {
            lookups += 1;
            if bases.binary_search(&&value[..base_length]).is_err() {
                continue;
            }
            let mut at = base_length;
            while at < value.len() {
                let found = lengths
                    .iter()
                    .take_while(|&&length| at + length <= value.len())
                    .find_map(|&length| {
                        lookups += 1;
                        by_text
                            .get(&value[at..at + length])
                            .map(|&class| (class, length))
                    });
                let Some((class, length)) = found else {
                    break;
                };
                visible[class as usize] = true;
                at += length;
            }
            if lookups > MAX_VISIBILITY_LOOKUPS {
                return None;
            }
        }
    }
    Some(visible)
}
