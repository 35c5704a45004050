//! Sequential specifications. A model is a small pure state machine: it compiles each history
//! operation into its own compact op, then says whether the op may be applied to a state and
//! what the state becomes. The search knows nothing else about models, so adding one never
//! touches the search.

mod counter;
mod keyed;
mod kv;
mod multi_register;
mod mutex;
mod queue;
mod register;
mod set;
mod subset_sums;

pub use counter::Counter;
pub use keyed::{Keyed, KeyedState};
pub use kv::Kv;
pub use multi_register::MultiRegister;
pub use mutex::Mutex;
pub use queue::{FifoQueue, UnorderedQueue};
pub use register::Register;
pub use set::Set;

use std::fmt::Debug;
use std::hash::Hash;

use serde_json::Value;

use crate::history::{Operation, Outcome, Output};
use crate::value::Val;

/// Every model name `--model` accepts, with a one-line description for `--help`.
pub const MODEL_NAMES: &[(&str, &str)] = &[
    ("register", "read/write; default --init 0"),
    ("cas-register", "read/write/cas [old new]; default --init 0"),
    (
        "counter",
        "read/add (ok add may give [delta total])/write/cas; default --init 0",
    ),
    ("kv", "string get/put/append per key; default --init \"\""),
    (
        "multi-register",
        "Knossos :txn of [:read k v] / [:write k v]; --init {\"x\":0,...}",
    ),
    ("mutex", "acquire/release; --init false (free)"),
    ("set", "add x / read -> all elements; --init []"),
    (
        "unordered-queue",
        "enqueue x / dequeue -> x (null = empty); --init []",
    ),
    (
        "fifo-queue",
        "enqueue x / dequeue -> x (null = empty); --init []",
    ),
];

/// A sequential specification.
pub trait Model: Sync {
    /// A state; compared and hashed by the search's memoisation.
    /// `Send` and `'static` so that a finished search's states can be freed on another
    /// thread.
    type State: Clone + Eq + Hash + Debug + Send + 'static;
    /// An operation compiled for this model (argument and observed output).
    type Op: Clone + Send + Sync;

    /// The initial state (from `--init`, or the model's default).
    fn init_state(&self) -> Self::State;
    /// Compiles one history operation; an error names what does not fit the model. The result
    /// may depend only on the op's f, key, invoke value and outcome (never on its process or
    /// index): the search treats in-doubt ops alike in these as interchangeable.
    fn compile(&self, op: &Operation) -> Result<Self::Op, String>;
    /// Every op of the object is compiled: what the model kept only to compile them (a memo
    /// shared between ops) may go. Later compiles (explanations) must still work.
    fn compiled_all(&self) {}
    /// The state after `op`, or `None` when `op` cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// Why `step` refuses `op` in `state`, for people.
    fn why_illegal(&self, state: &Self::State, op: &Self::Op) -> String;
    /// The state as JSON, for explanations.
    fn state_json(&self, state: &Self::State) -> Value;
    /// False when `op` never changes the state (a read): such an op that may never have
    /// happened (`info`) can be dropped.
    fn changes_state(&self, op: &Self::Op) -> bool;
    /// False when `op` is legal in every state.
    fn constrains(&self, op: &Self::Op) -> bool;
    /// Bytes a state holds on the heap, for memory accounting.
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
    /// For an in-doubt op whose effect, had it happened, is not determined by what was
    /// recorded (a dequeue that ended `info` took some element, unknown which): one
    /// deterministic op per effect it may have had, given every op of its object. At most one
    /// of them is linearized, or none (the op did not happen, or changed nothing). Empty
    /// (the default) when `step` alone says all that matters about the op.
    fn in_doubt_variants(&self, _op: &Self::Op, _object_ops: &[&Self::Op]) -> Vec<Self::Op> {
        Vec::new()
    }
    /// Deferral (see `search`): true when, among `object_ops` (every op of one object), each
    /// op that `deferrable` accepts may be moved past every op that `observes_state` refuses.
    /// That is, for such an op d, such an op y and every state s reachable in the object: if
    /// d then y is legal from s, then y then d is legal from s and ends in the same state, or
    /// y alone from s ends where d then y did (y overwrites d's effect); and d is legal in
    /// every such state. The default (false) defers nothing.
    fn defers_in_doubt(&self, _object_ops: &[&Self::Op]) -> bool {
        false
    }
    /// See `defers_in_doubt`: an op the search may postpone, when it is in doubt, until just
    /// before an op that observes the state. Never an op that observes the state.
    fn deferrable(&self, _op: &Self::Op) -> bool {
        false
    }
    /// Whether `op`'s legality or effect may depend on the state (a read of a value, a cas):
    /// deferred ops are linearized only just before such an op.
    fn observes_state(&self, _op: &Self::Op) -> bool {
        true
    }
    /// True when every deferrable op sets the state whatever it was (a register's write): a
    /// block of them then leaves what its last op set, the earlier ones may be left out (they
    /// are in doubt), and the search keeps blocks to one op.
    fn deferred_overwrite(&self) -> bool {
        false
    }
    /// Whether applying some of `deferred` (indexes into `ops`; deferrable ops, each at most
    /// once, in any order) to `state` may make some op of `targets` (indexes into `ops`; ops
    /// that observe the state) legal. True when unsure: false prunes the search. With
    /// `deferred_overwrite` no further deferred op may follow, so only `state` counts.
    fn deferred_may_enable(
        &self,
        _state: &Self::State,
        _ops: &[Self::Op],
        _deferred: &[u32],
        _targets: &[u32],
    ) -> bool {
        true
    }
    /// Pending pruning (see `search`): `pending` gives the events of the ops not linearized
    /// yet, from the first on, in real-time order (calls, and the returns of ops that must
    /// happen), possibly cut short. True promises that some op whose return is listed can
    /// never be linearized from `state`: no choice of ops called before that return, in any
    /// order, makes it legal. The default (false) prunes nothing.
    fn pending_unreachable(
        &self,
        _state: &Self::State,
        _ops: &[Self::Op],
        _pending: impl Iterator<Item = (u32, bool)>,
    ) -> bool {
        false
    }
    /// Asked once of a whole object before its search, with `state` the initial state and
    /// `events` every call and every return of an op that must happen, in real-time order: an
    /// op that must happen and that no choice of the ops called before its return, in any
    /// order, makes legal from `state` (a read of a value nothing writes), with why, for
    /// people. Such an op fails every configuration, and it alone, with every other op in
    /// doubt, is a counterexample. The default (`None`) claims nothing.
    fn never_legal(
        &self,
        _state: &Self::State,
        _ops: &[Self::Op],
        _events: &[(u32, bool)],
    ) -> Option<(u32, String)> {
        None
    }
    /// Growth pruning (see `search`): true for models whose state only grows between resets,
    /// as a kv string grows by appends until a put. Then the three methods below must keep
    /// their promises; the defaults (false, every op a reset) prune nothing. True also
    /// promises, for the search's dead states, that a reset's successor does not depend on the
    /// state before it, and that every op that changes the state is legal in every state.
    fn grows_between_resets(&self) -> bool {
        false
    }
    /// Whether `op` may replace the state wholesale (a put).
    fn is_reset(&self, _op: &Self::Op) -> bool {
        true
    }
    /// False promises that `op` is illegal in `state` and in every state reached from it by
    /// steps of ops that are not resets.
    fn reachable_without_resets(&self, _state: &Self::State, _op: &Self::Op) -> bool {
        true
    }
    /// False promises that `op` is illegal in every state `reset` leads to, and in every state
    /// reached from those by steps of ops that are not resets.
    fn reset_may_enable(&self, _reset: &Self::Op, _op: &Self::Op) -> bool {
        true
    }
    /// An index for growth pruning, so that its preparation is not a comparison of every
    /// observation with every reset: the bytes `reset` writes, when `reset_may_enable(reset,
    /// op)` can hold only if they are a prefix of `observed_bytes(op)`. `None` (the default)
    /// for either side means comparing pairwise.
    fn reset_bytes<'o>(&self, _reset: &'o Self::Op) -> Option<&'o [u8]> {
        None
    }
    /// See `reset_bytes`.
    fn observed_bytes<'o>(&self, _op: &'o Self::Op) -> Option<&'o [u8]> {
        None
    }
    /// For supply pruning (see `supply`): the bytes `op` appends, when its only effect is to
    /// extend the state by them, so that an observation of a state reached from a reset by
    /// such ops is the reset's bytes followed by theirs in order. `None` (the default) for an
    /// op that changes the state and is not a reset turns supply pruning off.
    fn appended_bytes<'o>(&self, _op: &'o Self::Op) -> Option<&'o [u8]> {
        None
    }
    /// For supply pruning: the bytes of the initial state, when the model is one of those
    /// `appended_bytes` describes. `None` (the default) turns the invisible-append analysis off.
    fn init_bytes(&self) -> Option<&[u8]> {
        None
    }
    /// Models made of independent parts (a map of keys checked as one object): the part `op`
    /// reads and changes, numbered densely from 0. An op's legality and effect must depend on
    /// its own part's state only. The search uses parts to learn, from a failure, which part
    /// cannot be completed (see `search`). A model of one part returns 0.
    fn component(&self, _op: &Self::Op) -> u32 {
        0
    }
    /// A hash of the state of one part (only asked of models with several parts).
    fn component_hash(&self, state: &Self::State, _component: u32) -> u64 {
        crate::fxhash::hash_one(state)
    }
    /// Whether two states agree on one part (only asked of models with several parts).
    fn component_eq(&self, left: &Self::State, right: &Self::State, _component: u32) -> bool {
        left == right
    }
}

/// The observed output of an op: `None` when unknown (info, or not observed).
pub(crate) fn known_output(op: &Operation) -> Option<&Value> {
    match &op.outcome {
        Outcome::Ok(Output::Known(value)) => Some(value),
        _ => None,
    }
}

pub(crate) fn expect_int(value: &Value, what: &str) -> Result<i64, String> {
    value
        .as_i64()
        .ok_or_else(|| format!("{what} must be an integer, found {value}"))
}

pub(crate) fn expect_pair(value: &Value, what: &str) -> Result<(Val, Val), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([first, second]) => Ok((Val::from_json(first), Val::from_json(second))),
        _ => Err(format!("{what} must be a pair [a, b], found {value}")),
    }
}

pub(crate) fn unknown_f(model: &str, f: &str, accepted: &str) -> String {
    format!("model {model} has no operation {f:?} (it accepts {accepted})")
}
