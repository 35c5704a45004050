//! The linearizability search for one object (one partition): Wing & Gong's tree search in
//! Lowe's just-in-time form, as Porcupine does it. Events (calls and returns) sit in a doubly
//! linked list in real-time order; the search linearizes a pending call whose step the model
//! allows, lifts it out of the list and starts again from the head; reaching the return of an
//! op not yet linearized means the last choice was wrong, so it backtracks. Configurations
//! (linearized set, state) already explored are memoised. An op that may never have happened
//! (`info`, or no completion) has no return event: it can be linearized any time after its
//! call, or left out; the search succeeds once every `ok` op is linearized.
//!
//! In-doubt twins. Two in-doubt ops of one object with the same f and the same argument
//! compile to the same model op (a model's `compile` sees only f, key, argument and
//! outcome), and neither has a return event. Call them twins. Take a configuration C (a
//! linearized set and a state) in which twins a and b are both unlinearized and both already
//! called (their calls precede the first pending return, so every op that returned before
//! either call is linearized). The permutation swapping a and b maps every completion of C to
//! a completion of C: the model steps are the same (same op), a and b each stay after their
//! call (both calls are already behind us, at any later point too), and neither bounds any
//! other op (no return). So the configuration C + a and C + b are completable alike, and the
//! search needs to try only one of them. It tries the earliest-called unlinearized member of
//! each twin class: if a later twin is a candidate, the earlier one is too. Then the
//! linearized members of a class are always a prefix of it in call order, so the search
//! explores multisets of in-doubt ops (how many of each class) instead of subsets: with k
//! twins of one class, k + 1 choices instead of 2^k.
//!
//! Deferral. Twins alone leave the search exploring, at every configuration, every multiset
//! of the in-doubt ops called so far: each is legal in every state and changes it, and the
//! wrong ones are refuted only at the next return (a counter with 20 lost adds of 5 distinct
//! amounts: thousands of multisets per position, millions of configurations). Some models
//! (`Model::defers_in_doubt`: a counter's adds without a reported total, a register's
//! writes) have in-doubt ops
//! that commute with every op that does not observe the state, or are overwritten by it. In
//! any linearization, such a deferrable op d followed by an op y that neither observes the
//! state nor is deferrable can be moved past y (or dropped, when y overwrites it): d has no
//! return, so nothing must follow it, and it stays after its call. Repeating this, and
//! dropping deferrable ops at the end, gives a linearization in which every run of deferrable
//! ops (a block) ends just before an op that observes the state. The search explores only
//! such linearizations: after a deferrable op it takes only another one or an op that
//! observes the state, and the cache tells configurations in a block from the others (their
//! continuations differ). It also takes a deferrable op only when some op that observes the
//! state and may be linearized now could become legal after it and some of the other pending
//! deferrable ops (`Model::deferred_may_enable`): a block must end in such an op, and taking
//! in-doubt ops never moves the first pending return, so the ops that may end the block are
//! those pending now. Where each deferrable op overwrites the state whatever it was (a
//! register's writes: `Model::deferred_overwrite`), a block needs only its last op (the
//! earlier ones, in doubt, may be left out), so blocks hold one op. A legal observer is
//! still taken greedily inside a block: any
//! completion can take it first. Deferral is off for objects of several parts and for
//! growth pruning, whose state keys it would have to share.
//!
//! Pending pruning. Some models can tell from the ops still to linearize that a configuration
//! has no completion (`Model::pending_unreachable`): the ops linearized before a pending op o
//! are among those called before o returns, so if no choice of them makes o legal from the
//! state now, the search drops the configuration at once instead of finding out at o's
//! return after trying every order of the ops called meanwhile. A counter whose in-doubt adds
//! stood in for an ok add (the block reached a read's value, but the ok add's reported total
//! is now out of reach) is dropped so. The model sees the pending events from the first on,
//! up to a bounded number, after each step that changes the state. Before the first step the
//! model sees every event once (`Model::never_legal`): an op that no op called before its
//! return can make legal (a read of a value nothing writes) fails every configuration, so
//! the object is not linearizable, and the search runs only a bounded number of steps more,
//! for a prefix to show.
//!
//! Variants. An in-doubt op whose effect is not fixed by the record (a dequeue that ended
//! `info` took some element) arrives as several ops, one per possible effect, in one
//! exclusive group: each is in doubt, with the call of the original op, and once one of them
//! is linearized the others are not candidates. The configuration is still the linearized set
//! and the state (the set says which variant was taken), so memoisation is unchanged.
//!
//! Parts. A map of independent keys checked as one object (`--no-partition`) has one part per
//! key (`Model::component`). The ops still to linearize from a configuration form a history
//! of their own (every op that returned before a linearized op's call is linearized), so by
//! P-compositionality a configuration can be completed iff each part can be completed from
//! its own projection: the part's linearized ops and the part's state. The search therefore
//! tags every failed configuration with a part whose projection fails, and learns that
//! projection:
//! - reaching the return of an unlinearized op of part p fails in p: every op of p called
//!   before it was tried (or is a twin of, or a variant beside, one that was), and each
//!   successor failed in p itself (else the configuration would have failed earlier, below);
//! - a successor reached by an op of part q that failed in part p != q fails in p here too
//!   (the op left p's projection as it was), so the search backjumps at once, past every op
//!   of other parts, to the last op of p;
//! - an observer's successor that failed in its own part p fails in p here (see `FORCED`);
//! - a successor whose part projection is known to fail is not explored again, whatever the
//!   other parts are, so one key's dead end is not re-explored under every state of the
//!   others. Part projections compare exactly (ids of part states, exact sets), never by
//!   hash alone.

//!
//! Growth pruning. In some models the state only grows between resets (a kv string grows by
//! appends until a put; see `Model::grows_between_resets`). Take an `ok` observation g (a
//! get) not yet linearized and the state S now. Every completion linearizes g later, in a
//! state reached from S by some ops; if none of them is a reset that may enable g, g must be
//! reachable from S without resets. A reset can precede g only if it was called before g
//! returned. So when S cannot reach g without resets and every reset that may enable g and
//! was called before g returned is already linearized, the configuration has no completion
//! and the search drops it at once instead of finding out at g's return, after trying every
//! order of the ops called meanwhile. Nothing here needs g to be called already: an
//! observation called later still comes after every op linearized now. The search asks this,
//! after each step that changes the state, of the observations pending now (called, return
//! not yet reached) and of those called within a bounded look-ahead past the first return
//! still to come, so that appends concurrent with a put are not tried in every order on the
//! wrong side of it before a get called a little later refutes them all. It also asks it of
//! one observation however far ahead it is called: the shortest orphan, an unlinearized
//! observation whose enabling resets (those that may enable it and were called before it
//! returned) are all linearized. The orphans are kept up to date as ops are linearized and
//! undone, so a get whose only possible base is a put taken long ago holds the state to a
//! prefix of its value from then on.
//!
//! Dead states. In such a model, let resets set the state whatever it was before, and let
//! every op but the observations be legal in every state (a kv put, append). Take a
//! configuration (set, S) and an unlinearized `ok` reset P whose return is still to come.
//! Every observation called after P returned comes after P, so it sees a state built from
//! P's value, not from S. If every other unlinearized `ok` observation g (called before P
//! returned) cannot be reached from S without a reset, each needs a reset between now and g,
//! after which S is forgotten too. Then the completions of (set, S) do not depend on S: they
//! are those of (set, S') for any other such S'. The search remembers all of them under one
//! name, so appends overwritten by a put are not explored in every order (k lost appends:
//! one configuration per subset instead of one per ordered subset). It looks for P within a
//! bounded look-ahead and otherwise keeps S.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use crate::cache::{Cache, OpSet};
use crate::fxhash::{hash_one, splitmix64, FxHashMap};
use crate::model::Model;
use crate::supply::Supply;

/// One object's operations, compiled, with real-time order.
pub(crate) struct SearchInput<M: Model> {
    pub ops: Vec<M::Op>,
    /// True for ops that certainly happened (`ok`); others may be left out.
    pub must_happen: Vec<bool>,
    /// True for ops that never change the state (reads): they are linearized greedily.
    pub observer: Vec<bool>,
    /// Calls and returns of `ops` (local numbers) in real-time order; ops that may never have
    /// happened have no return.
    pub events: Vec<(u32, bool)>,
    /// For in-doubt ops with the same key, f and argument as another in-doubt op: the class of
    /// such twins (dense numbers from 0); `NO_TWINS` for every other op. See the module doc.
    pub twin_class: Vec<u32>,
    /// For the variants of one in-doubt op (the ways it may have happened): their group
    /// (dense numbers from 0), of which at most one op is linearized; `NO_GROUP` for every
    /// other op. Variants are in doubt and have no twins.
    pub exclusive_group: Vec<u32>,
    /// The independent part of the object each op touches (`Model::component`).
    pub component: Vec<u32>,
    /// In-doubt ops the search defers until just before an op that observes the state (see
    /// the module doc); all false when the model defers nothing.
    pub deferrable: Vec<bool>,
    /// Ops whose legality or effect may depend on the state (`Model::observes_state`).
    pub observes: Vec<bool>,
}

/// `SearchInput::twin_class` of an op that has no twin.
pub(crate) const NO_TWINS: u32 = u32::MAX;
/// `SearchInput::exclusive_group` of an op that is not a variant.
pub(crate) const NO_GROUP: u32 = u32::MAX;
/// Cache tag of a configuration not known to fail.
const NO_PART: u32 = u32::MAX;

/// What the search keeps per part of an object made of several (see the module doc).
struct Parts {
    /// Op -> its number within its part.
    local: Vec<u32>,
    /// Per part: its linearized ops (by number within the part) and their Zobrist hash.
    sets: Vec<OpSet>,
    hashes: Vec<u64>,
    /// (part, hash of the part's state) -> ids of the distinct part states with that hash.
    state_ids: FxHashMap<(u32, u64), Vec<u32>>,
    /// Part state id -> (part, a full state id holding that part state).
    state_owners: Vec<(u32, u32)>,
    /// Part configurations (part state id, the part's linearized set) known to fail.
    failing: Cache,
}

impl Parts {
    fn bytes(&self) -> u64 {
        let sets: usize = self.sets.iter().map(OpSet::bytes).sum();
        (self.local.capacity() * 4
            + sets
            + self.hashes.capacity() * 8
            + self.state_ids.capacity() * 48
            + self.state_owners.capacity() * 8) as u64
            + self.failing.bytes()
    }
}

/// Growth pruning data (see the module doc).
struct Growth {
    /// Per op: whether it is an `ok` observation the pruning watches.
    target: Vec<bool>,
    /// Per target: the resets that may enable it and were called before it returned, those
    /// of op `o` at `enabler_list[enabler_starts[o]..enabler_starts[o + 1]]` (one list for
    /// all, not one allocation per observation).
    enabler_starts: Vec<u32>,
    enabler_list: Vec<u32>,
    /// A second linked list over the event nodes still in the main one that growth pruning
    /// and dead states look at (the calls of targets, every return), in the same order, so
    /// that their look-aheads skip the many calls they ignore (with many clients or ops in
    /// doubt, most of the list).
    watched_next: Vec<u32>,
    watched_prev: Vec<u32>,
    /// Supply pruning (see `supply`), prepared once the search has run for a while.
    supply: Option<Supply>,
    supply_prepared: bool,
    /// Events past the first return still to come that `growth_forbids` looks at.
    lookahead_nodes: u32,
    /// Per reset: the targets it may enable (the enabler lists inverted), those of op `r` at
    /// `enabled_list[enabled_starts[r]..enabled_starts[r + 1]]`.
    enabled_starts: Vec<u32>,
    enabled_list: Vec<u32>,
    /// Per target: how many of its enablers are not linearized.
    enablers_left: Vec<u32>,
    /// Orphans: unlinearized targets whose enablers are all linearized, by (length of the
    /// observed value, op). Wherever an orphan is called, no reset can come before it any
    /// more, so the state must stay a prefix of its value (see the module doc on growth
    /// pruning); the shortest is asked at every step, however far ahead it is called.
    orphans: BTreeSet<(u32, u32)>,
    /// Per target: its key in `orphans`.
    orphan_key: Vec<u32>,
}

/// Growth pruning also asks the observations called after the first return still to come,
/// up to this many events past it (see `growth_forbids`).
const GROWTH_LOOKAHEAD_NODES: u32 = 64;
/// Once a search has run long enough to prepare supply pruning, the look-ahead grows to this
/// many events per op that may be pending at once (with 100 clients on one key, a get that
/// fixes the order of the appends before it is often called more than 64 events after the
/// first return), up to `GROWTH_LOOKAHEAD_NODES_MAX`. Longer look-aheads cost every step, so
/// short searches keep the short one.
const GROWTH_LOOKAHEAD_NODES_PER_PENDING: u32 = 2;
const GROWTH_LOOKAHEAD_NODES_MAX: u32 = 1024;

/// Beyond this many (observation, reset) pairs to compare, growth pruning is not prepared:
/// preparing it would cost more than most searches.
const MAX_GROWTH_PAIRS: usize = 20_000_000;

impl Growth {
    fn new<M: Model>(model: &M, input: &SearchInput<M>) -> Option<Growth> {
        if !model.grows_between_resets() {
            return None;
        }
        let op_count = input.ops.len();
        let (call_event, return_event) = event_positions(&input.events, op_count);
        let target: Vec<bool> = (0..op_count)
            .map(|op| input.must_happen[op] && input.observer[op])
            .collect();
        let targets = target.iter().filter(|&&target| target).count();
        if targets == 0 {
            return None;
        }
        // Resets in call order, so each target scans only those called before it returned.
        let mut resets: Vec<u32> = (0..op_count as u32)
            .filter(|&op| model.is_reset(&input.ops[op as usize]))
            .collect();
        resets.sort_by_key(|&op| call_event[op as usize]);
        // Resets by the bytes they write, when the model says which resets may enable an
        // observation by its bytes: each target then looks up its own prefixes, at the
        // lengths some reset writes, instead of comparing with every reset.
        let mut by_bytes: FxHashMap<&[u8], Vec<u32>> = FxHashMap::default();
        let mut unindexed: Vec<u32> = Vec::new();
        for &reset in &resets {
            match model.reset_bytes(&input.ops[reset as usize]) {
                Some(bytes) => by_bytes.entry(bytes).or_default().push(reset),
                None => unindexed.push(reset),
            }
        }
        let mut lengths: Vec<usize> = by_bytes.keys().map(|bytes| bytes.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let indexed_targets = (0..op_count)
            .filter(|&op| target[op] && model.observed_bytes(&input.ops[op]).is_some())
            .count();
        let pairs = indexed_targets.saturating_mul(lengths.len() + unindexed.len())
            + (targets - indexed_targets).saturating_mul(resets.len());
        if pairs > MAX_GROWTH_PAIRS {
            return None;
        }
        let mut enabler_starts = Vec::with_capacity(op_count + 1);
        let mut enabler_list = Vec::new();
        for op in 0..op_count {
            enabler_starts.push(enabler_list.len() as u32);
            if !target[op] {
                continue;
            }
            let called_in_time = |reset: &u32| call_event[*reset as usize] < return_event[op];
            let may_enable =
                |reset: &u32| model.reset_may_enable(&input.ops[*reset as usize], &input.ops[op]);
            let Some(observed) = model.observed_bytes(&input.ops[op]) else {
                enabler_list.extend(
                    resets
                        .iter()
                        .copied()
                        .take_while(called_in_time)
                        .filter(may_enable),
                );
                continue;
            };
            let first = enabler_list.len();
            enabler_list.extend(
                lengths
                    .iter()
                    .take_while(|&&length| length <= observed.len())
                    .filter_map(|&length| by_bytes.get(&observed[..length]))
                    .flatten()
                    .chain(&unindexed)
                    .copied()
                    .filter(called_in_time)
                    .filter(may_enable),
            );
            enabler_list[first..].sort_unstable_by_key(|&reset| call_event[reset as usize]);
        }
        enabler_starts.push(enabler_list.len() as u32);
        assert!(
            enabler_list.len() < u32::MAX as usize,
            "enabler lists fit u32 offsets"
        );
        let mut enabled_starts = vec![0u32; op_count + 1];
        for &reset in &enabler_list {
            enabled_starts[reset as usize + 1] += 1;
        }
        for op in 0..op_count {
            enabled_starts[op + 1] += enabled_starts[op];
        }
        let mut enabled_list = vec![0u32; enabler_list.len()];
        let mut filled = enabled_starts.clone();
        let mut enablers_left = vec![0u32; op_count];
        let mut orphan_key = vec![0u32; op_count];
        let mut orphans = BTreeSet::new();
        for op in 0..op_count {
            if !target[op] {
                continue;
            }
            let (first, end) = (enabler_starts[op] as usize, enabler_starts[op + 1] as usize);
            for &reset in &enabler_list[first..end] {
                enabled_list[filled[reset as usize] as usize] = op as u32;
                filled[reset as usize] += 1;
            }
            enablers_left[op] = (end - first) as u32;
            orphan_key[op] = model
                .observed_bytes(&input.ops[op])
                .map_or(u32::MAX, |bytes| {
                    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
                });
            if end == first {
                // Nothing linearized yet: an observation no reset may enable is an orphan now.
                orphans.insert((orphan_key[op], op as u32));
            }
        }
        Some(Growth {
            target,
            enabler_starts,
            enabler_list,
            watched_next: Vec::new(),
            watched_prev: Vec::new(),
            supply: None,
            supply_prepared: false,
            lookahead_nodes: GROWTH_LOOKAHEAD_NODES,
            enabled_starts,
            enabled_list,
            enablers_left,
            orphans,
            orphan_key,
        })
    }

    /// Where the targets reset `op` may enable sit in `enabled_list`.
    fn enabled_range(&self, op: usize) -> std::ops::Range<usize> {
        self.enabled_starts[op] as usize..self.enabled_starts[op + 1] as usize
    }

    /// Keeps the orphans (see `orphans`) right after `op` joined the linearized set.
    fn on_mark(&mut self, op: u32, linearized: &OpSet) {
        let index = op as usize;
        if self.target[index] && self.enablers_left[index] == 0 {
            let removed = self.orphans.remove(&(self.orphan_key[index], op));
            debug_assert!(
                removed,
                "an unlinearized target without enablers is an orphan"
            );
        }
        for &target in &self.enabled_list[self.enabled_range(index)] {
            let left = &mut self.enablers_left[target as usize];
            *left -= 1;
            if *left == 0 && !linearized.contains(target) {
                self.orphans
                    .insert((self.orphan_key[target as usize], target));
            }
        }
    }

    /// Undoes `on_mark`, right after `op` left the linearized set.
    fn on_unmark(&mut self, op: u32, linearized: &OpSet) {
        let index = op as usize;
        for &target in &self.enabled_list[self.enabled_range(index)] {
            let left = &mut self.enablers_left[target as usize];
            if *left == 0 && !linearized.contains(target) {
                self.orphans
                    .remove(&(self.orphan_key[target as usize], target));
            }
            *left += 1;
        }
        if self.target[index] && self.enablers_left[index] == 0 {
            self.orphans.insert((self.orphan_key[index], op));
        }
    }

    /// Links the watched nodes (see `watched_next`) of the fresh event list `events`:
    /// node 0 is the head sentinel, node 1 + e event e, `tail` the tail sentinel.
    fn link_watched(&mut self, events: &[(u32, bool)], tail: u32) {
        let node_count = tail as usize + 1;
        self.watched_next = vec![tail; node_count];
        self.watched_prev = vec![0; node_count];
        let mut last = 0u32;
        for (event, &(op, is_call)) in events.iter().enumerate() {
            if is_call && !self.target[op as usize] {
                continue;
            }
            let node = event as u32 + 1;
            self.watched_next[last as usize] = node;
            self.watched_prev[node as usize] = last;
            last = node;
        }
        self.watched_next[last as usize] = tail;
        self.watched_prev[tail as usize] = last;
    }

    /// The resets that may enable target `op` (see `enabler_starts`).
    fn enablers(&self, op: u32) -> &[u32] {
        let op = op as usize;
        &self.enabler_list[self.enabler_starts[op] as usize..self.enabler_starts[op + 1] as usize]
    }

    fn bytes(&self) -> u64 {
        (self.target.capacity()
            + (self.enabler_starts.capacity()
                + self.enabler_list.capacity()
                + self.watched_next.capacity()
                + self.watched_prev.capacity()
                + self.enabled_starts.capacity()
                + self.enabled_list.capacity()
                + self.enablers_left.capacity()
                + self.orphan_key.capacity())
                * 4
            // A B-tree entry: 8 bytes, plus about as much again in node overhead.
            + self.orphans.len() * 16) as u64
            + self.supply.as_ref().map_or(0, Supply::bytes)
    }
}

/// Shared limits of one `check`.
pub(crate) struct Budget {
    pub deadline: Option<Instant>,
    pub memory_limit_bytes: Option<u64>,
    /// Bytes held by all searches running now.
    pub memory_in_use: AtomicU64,
    /// The most `memory_in_use` was seen to reach.
    pub peak_memory: AtomicU64,
    /// Set when any budget ran out (1 time, 2 memory), so every search stops.
    pub exhausted: AtomicU8,
    /// See `CheckOptions::supply_after_steps`.
    pub supply_after_steps: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exhausted {
    Time,
    Memory,
}

pub(crate) enum SearchResult {
    Linearizable,
    /// The longest linearization found (local op numbers, in order) before every
    /// continuation failed.
    NotLinearizable {
        longest_prefix: Vec<u32>,
    },
    Exhausted(Exhausted),
}

#[derive(Default)]
pub(crate) struct SearchStats {
    pub states_explored: u64,
    pub steps: u64,
    pub peak_bytes: u64,
}

/// Interned model states: the cache stores a 4-byte id instead of the state. Each state is
/// stored once; an open-addressing table of ids (with each state's hash beside it) finds it.
struct Interner<S> {
    states: Vec<S>,
    hashes: Vec<u64>,
    /// Id + 1 per slot; 0 = empty.
    table: Vec<u32>,
    mask: usize,
    heap_bytes: u64,
}

impl<S: Eq + std::hash::Hash> Interner<S> {
    fn new() -> Interner<S> {
        let slots = 64;
        Interner {
            states: Vec::new(),
            hashes: Vec::new(),
            table: vec![0; slots],
            mask: slots - 1,
            heap_bytes: 0,
        }
    }

    #[inline]
    fn slot_of(&self, hash: u64) -> usize {
        (hash as usize) & self.mask
    }

    fn intern(&mut self, state: S, heap_bytes: impl FnOnce(&S) -> usize) -> u32 {
        let hash = hash_one(&state);
        let mut slot = self.slot_of(hash);
        loop {
            let occupant = self.table[slot];
            if occupant == 0 {
                break;
            }
            let id = (occupant - 1) as usize;
            if self.hashes[id] == hash && self.states[id] == state {
                return id as u32;
            }
            slot = (slot + 1) & self.mask;
        }
        let id = self.states.len();
        assert!(id < DEAD_STATE as usize, "state ids fit in u32");
        self.heap_bytes += heap_bytes(&state) as u64;
        self.states.push(state);
        self.hashes.push(hash);
        self.table[slot] = id as u32 + 1;
        if self.states.len() * 2 > self.table.len() {
            self.grow();
        }
        id as u32
    }

    fn grow(&mut self) {
        let slots = self.table.len() * 2;
        self.table = vec![0; slots];
        self.mask = slots - 1;
        for (id, &hash) in self.hashes.iter().enumerate() {
            let mut slot = self.slot_of(hash);
            while self.table[slot] != 0 {
                slot = (slot + 1) & self.mask;
            }
            self.table[slot] = id as u32 + 1;
        }
    }

    fn bytes(&self) -> u64 {
        self.states.capacity() as u64 * std::mem::size_of::<S>() as u64
            + self.hashes.capacity() as u64 * 8
            + self.table.len() as u64 * 4
            + self.heap_bytes
    }
}

const NO_STATE: u32 = u32::MAX;
/// The cache's name for every dead state (see the module doc); never a state id.
const DEAD_STATE: u32 = u32::MAX - 2;
/// Marks the cache's state of a configuration inside a block of deferred ops (see the module
/// doc); never set in a state id while deferral is on.
const IN_BLOCK: u32 = 1 << 31;
/// Events the pending-pruning test passes to the model, at most.
const PENDING_LOOKAHEAD_NODES: usize = 128;
/// Events the dead-state test looks through for the return of a reset.
const DEAD_STATE_LOOKAHEAD_NODES: usize = 256;
/// A transition's successor state computed but not interned yet (see `run_steps`).
const NOT_INTERNED: u32 = u32::MAX - 1;
/// Marks a stack entry (its call node) whose op is an observer (changes no state). An observer
/// that is legal may be linearized at once without losing solutions: it changes nothing, and
/// every op that must precede it already has. So when the configuration after it fails, the one
/// before fails too, and backtracking goes on past it.
const FORCED: u32 = 1 << 31;
/// No event node.
const NO_NODE: u32 = u32::MAX;
/// Cache entries reserved per op up front: searches of real histories visit at least one
/// configuration per op, and growing the cache by doubling copies it again and again. More
/// would make every large partition pay memory that most do not use.
const CACHE_ENTRIES_PER_OP: usize = 2;
/// Steps a search takes, at most, on an object with an op that can never take effect (see
/// `Model::never_legal`): it is not linearizable whatever the search finds, so the search is
/// only for the longest linearizable prefix it reaches, which the explanation shows. A small
/// object is searched whole, as any other; a large one no longer costs every order of its ops.
const STEPS_WHEN_NEVER_LEGAL: u64 = 20_000;
/// How many search steps run between two looks at the clock and the memory budget.
const BUDGET_CHECK_INTERVAL: u64 = 4096;

/// Whether a slice of search work decided the object.
pub(crate) enum Progress {
    Done(SearchResult),
    /// The step allowance ran out first; `run` again to continue.
    Paused,
}

/// A resumable search over one object. It advances in slices of a given number of steps, so
/// that the caller can interleave objects deterministically (the verdicts, and which invalid
/// object is explained, depend on step counts, never on thread timing).
pub(crate) struct Search<'a, M: Model> {
    model: &'a M,
    input: &'a SearchInput<M>,
    tail: u32,
    next: Vec<u32>,
    prev: Vec<u32>,
    node_op: Vec<u32>,
    node_is_call: Vec<bool>,
    /// Return node of each op that must happen.
    return_node: Vec<u32>,
    zobrist: Vec<u64>,
    interner: Interner<M::State>,
    /// (state id, op) -> next state id, or NO_STATE when illegal.
    transitions: TransitionMemo,
    cache: Cache,
    linearized: OpSet,
    hash: u64,
    state: u32,
    /// (call node, state before, cache entry of the configuration it leads to).
    stack: Vec<(u32, u32, u32)>,
    /// Present when the object has several parts.
    parts: Option<Parts>,
    /// Present when the model grows between resets (see the module doc).
    growth: Option<Growth>,
    /// Members of each twin class in call order.
    twin_members: Vec<Vec<u32>>,
    /// Per twin class, how many of its members are linearized (always its first ones).
    twins_taken: Vec<u32>,
    /// Per exclusive group, whether one of its variants is linearized.
    group_taken: Vec<bool>,
    /// Whether deferral is on (see the module doc).
    defer: bool,
    /// Blocks of deferred ops hold one op (`Model::deferred_overwrite`).
    blocks_of_one: bool,
    /// The call node of an invisible append the current (dead) configuration takes and
    /// nothing else (see `supply`), or `NO_NODE`.
    forced_call: u32,
    /// Whether the last linearized op is deferrable: the configuration is inside a block.
    in_block: bool,
    /// Scratch lists for `block_may_end`.
    pending_deferred: Vec<u32>,
    pending_observers: Vec<u32>,
    must_remaining: usize,
    longest: Vec<u32>,
    entry: u32,
    published_bytes: u64,
    peak_bytes: u64,
    steps: u64,
    finished: bool,
    /// Cache entries when the search finished (the cache is freed then).
    states_explored: u64,
    /// The model found, before any step, an op that no configuration can linearize (see
    /// `new`): the object is not linearizable, and the search goes on only for a while, for a
    /// prefix to show.
    unreachable_from_start: bool,
}

impl<'a, M: Model> Search<'a, M> {
    pub(crate) fn new(model: &'a M, input: &'a SearchInput<M>) -> Search<'a, M> {
        let op_count = input.ops.len();
        assert_eq!(input.must_happen.len(), op_count);
        assert!(
            op_count < (u32::MAX / 2) as usize,
            "too many ops for one partition"
        );
        // Linked list: node 0 is the head sentinel, node 1 + e is event e, then the tail.
        let node_count = input.events.len() + 2;
        let tail = (node_count - 1) as u32;
        let mut next: Vec<u32> = (1..=node_count as u32).collect();
        let mut prev: Vec<u32> = (0..node_count as u32)
            .map(|node| node.wrapping_sub(1))
            .collect();
        next[tail as usize] = tail;
        prev[0] = 0;
        let mut node_op = vec![0u32; node_count];
        let mut node_is_call = vec![false; node_count];
        let mut return_node = vec![0u32; op_count];
        for (event, &(op, is_call)) in input.events.iter().enumerate() {
            let node = event + 1;
            node_op[node] = op;
            node_is_call[node] = is_call;
            if !is_call {
                return_node[op as usize] = node as u32;
            }
        }
        assert_eq!(input.twin_class.len(), op_count);
        let classes_count = input
            .twin_class
            .iter()
            .filter(|&&class| class != NO_TWINS)
            .map(|&class| class as usize + 1)
            .max()
            .unwrap_or(0);
        let mut twin_members = vec![Vec::new(); classes_count];
        // Events are in real-time order, so members are pushed in call order.
        for &(op, is_call) in &input.events {
            let class = input.twin_class[op as usize];
            if class != NO_TWINS {
                assert!(is_call, "twins are in doubt: they have no return event");
                assert!(!input.must_happen[op as usize], "twins are in doubt");
                twin_members[class as usize].push(op);
            }
        }
        assert!(
            twin_members.iter().all(|members| members.len() >= 2),
            "a twin class has at least two members"
        );
        let twins_taken = vec![0u32; classes_count];
        assert_eq!(input.exclusive_group.len(), op_count);
        let groups_count = input
            .exclusive_group
            .iter()
            .filter(|&&group| group != NO_GROUP)
            .map(|&group| group as usize + 1)
            .max()
            .unwrap_or(0);
        for (op, &group) in input.exclusive_group.iter().enumerate() {
            if group != NO_GROUP {
                assert!(!input.must_happen[op], "variants are in doubt");
                assert_eq!(input.twin_class[op], NO_TWINS, "variants have no twins");
            }
        }
        let group_taken = vec![false; groups_count];
        let mut zobrist_seed = 0x6d69_6e6f_735f_6368u64;
        let zobrist: Vec<u64> = (0..op_count)
            .map(|_| splitmix64(&mut zobrist_seed))
            .collect();
        let mut interner = Interner::new();
        let state = interner.intern(model.init_state(), |state| model.state_heap_bytes(state));
        let entry = next[0];
        assert_eq!(input.component.len(), op_count);
        let parts_count = input
            .component
            .iter()
            .map(|&part| part as usize + 1)
            .max()
            .unwrap_or(0);
        let parts = (parts_count > 1).then(|| {
            let mut sizes = vec![0u32; parts_count];
            let local = input
                .component
                .iter()
                .map(|&part| {
                    let number = sizes[part as usize];
                    sizes[part as usize] += 1;
                    number
                })
                .collect();
            Parts {
                local,
                sets: sizes
                    .iter()
                    .map(|&size| OpSet::new(size as usize))
                    .collect(),
                hashes: vec![0; parts_count],
                state_ids: FxHashMap::default(),
                state_owners: Vec::new(),
                failing: Cache::new(),
            }
        });
        // Growth pruning is for one-part objects: a dropped successor carries no failed part.
        let mut growth = if parts.is_none() {
            Growth::new(model, input)
        } else {
            None
        };
        if let Some(growth) = &mut growth {
            growth.link_watched(&input.events, tail);
        }
        assert_eq!(input.deferrable.len(), op_count);
        assert_eq!(input.observes.len(), op_count);
        for op in 0..op_count {
            if input.deferrable[op] {
                assert!(!input.must_happen[op], "deferrable ops are in doubt");
                assert!(
                    !input.observes[op],
                    "deferrable ops do not observe the state"
                );
                assert_eq!(
                    input.exclusive_group[op], NO_GROUP,
                    "variants are not deferred"
                );
            }
        }
        let defer = parts.is_none() && growth.is_none() && input.deferrable.contains(&true);
        // An op that nothing called before its return can make legal (a read of a value
        // never written) fails every configuration; the search would otherwise find that out
        // only by trying every order of the ops before it. Pending pruning's window is
        // bounded, and in-doubt calls, which stay pending for good, fill it in long histories.
        let unreachable_from_start = model
            .never_legal(&interner.states[state as usize], &input.ops, &input.events)
            .is_some();
        let mut cache = Cache::with_capacity(op_count * CACHE_ENTRIES_PER_OP);
        if parts.is_some() {
            cache.keep_tags();
        }
        Search {
            model,
            input,
            tail,
            next,
            prev,
            node_op,
            node_is_call,
            return_node,
            zobrist,
            interner,
            transitions: TransitionMemo::new(op_count),
            cache,
            linearized: OpSet::new(op_count),
            hash: 0,
            state,
            stack: Vec::new(),
            parts,
            growth,
            twin_members,
            twins_taken,
            group_taken,
            defer,
            blocks_of_one: model.deferred_overwrite(),
            forced_call: NO_NODE,
            in_block: false,
            pending_deferred: Vec::new(),
            pending_observers: Vec::new(),
            must_remaining: input.must_happen.iter().filter(|&&must| must).count(),
            longest: Vec::new(),
            entry,
            published_bytes: 0,
            peak_bytes: 0,
            steps: 0,
            finished: false,
            states_explored: 0,
            unreachable_from_start,
        }
    }

    pub(crate) fn stats(&self) -> SearchStats {
        SearchStats {
            states_explored: self.states_explored.max(self.cache.len() as u64),
            steps: self.steps,
            peak_bytes: self.peak_bytes.max(self.bytes()),
        }
    }

    /// The ops linearized on the current path (local op numbers, in order): after the search
    /// found the object linearizable, the whole linearization.
    pub(crate) fn path(&self) -> Vec<u32> {
        self.stack
            .iter()
            .map(|&(call, _, _)| self.node_op[(call & !FORCED) as usize])
            .collect()
    }

    /// The longest linearizable prefix reached so far (local op numbers, in order): the path
    /// now, or the longest one backtracked from when that was longer. For an undecided object.
    pub(crate) fn longest_prefix(&self) -> Vec<u32> {
        if self.stack.len() > self.longest.len() {
            self.path()
        } else {
            self.longest.clone()
        }
    }

    fn bytes(&self) -> u64 {
        let fixed = (self.next.capacity() + self.prev.capacity() + self.node_op.capacity()) as u64
            * 4
            + self.zobrist.capacity() as u64 * 8;
        fixed
            + self.cache.bytes()
            + self.interner.bytes()
            + self.transitions.bytes()
            + self.stack.capacity() as u64 * 12
            + self.parts.as_ref().map_or(0, Parts::bytes)
            + self.growth.as_ref().map_or(0, Growth::bytes)
            + self.longest.capacity() as u64 * 4
            + (self.twins_taken.capacity() + self.input.twin_class.len()) as u64 * 4 * 2
            + self.input.exclusive_group.len() as u64 * 4
            + self.group_taken.capacity() as u64
            + (self.pending_deferred.capacity() + self.pending_observers.capacity()) as u64 * 4
            + (self.input.deferrable.len() + self.input.observes.len()) as u64
    }

    /// Publishes this search's memory to the shared budget and checks both limits.
    fn account(&mut self, budget: &Budget) -> Option<Exhausted> {
        let bytes = self.bytes();
        self.peak_bytes = self.peak_bytes.max(bytes);
        if bytes >= self.published_bytes {
            budget
                .memory_in_use
                .fetch_add(bytes - self.published_bytes, Ordering::Relaxed);
        } else {
            budget
                .memory_in_use
                .fetch_sub(self.published_bytes - bytes, Ordering::Relaxed);
        }
        self.published_bytes = bytes;
        budget.peak_memory.fetch_max(
            budget.memory_in_use.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        over_budget(budget)
    }

    /// Releases this search's memory from the shared budget (it is about to be dropped).
    fn release(&mut self, budget: &Budget) {
        budget
            .memory_in_use
            .fetch_sub(self.published_bytes, Ordering::Relaxed);
        self.published_bytes = 0;
    }

    /// Drops a paused search, releasing its memory from the shared budget.
    pub(crate) fn abandon(mut self, budget: &Budget) {
        self.release(budget);
    }

    /// Runs at most `max_steps` steps.
    pub(crate) fn run(&mut self, max_steps: u64, budget: &Budget) -> Progress {
        assert!(!self.finished, "a finished search is not resumed");
        let progress = self.run_steps(max_steps, budget);
        if let Progress::Done(_) = progress {
            self.peak_bytes = self.peak_bytes.max(self.bytes());
            self.finished = true;
            self.release(budget);
            // Keep the counts, free the memory: other objects may still be searching.
            self.states_explored = self.cache.len() as u64;
            let bytes = self.bytes();
            let garbage = (
                std::mem::replace(&mut self.cache, Cache::new()),
                std::mem::replace(&mut self.interner, Interner::new()),
                self.parts.take(),
                self.growth.take(),
                std::mem::replace(&mut self.transitions, TransitionMemo::new(0)),
            );
            free_aside(garbage, bytes);
        }
        progress
    }

    /// Whether, after linearizing `taken` into state `after`, the model finds a pending op
    /// that can never become legal (see the module doc on pending pruning).
    fn pending_forbids(&self, taken: u32, after: u32) -> bool {
        let mut node = self.next[0];
        let mut seen = 0usize;
        let pending = std::iter::from_fn(|| loop {
            if node == self.tail || seen == PENDING_LOOKAHEAD_NODES {
                return None;
            }
            let current = node as usize;
            node = self.next[current];
            seen += 1;
            let op = self.node_op[current];
            if op != taken {
                return Some((op, self.node_is_call[current]));
            }
        });
        self.model.pending_unreachable(
            &self.interner.states[after as usize],
            &self.input.ops,
            pending,
        )
    }

    /// Whether, after linearizing the deferrable op `taken` into state `after`, some op that
    /// observes the state and may be linearized now could become legal after some of the other
    /// pending deferrable ops (see the module doc on deferral).
    fn block_may_end(&mut self, taken: u32, after: u32) -> bool {
        let input = self.input;
        self.pending_deferred.clear();
        self.pending_observers.clear();
        let mut node = self.next[0];
        while node != self.tail && self.node_is_call[node as usize] {
            let op = self.node_op[node as usize];
            let group = input.exclusive_group[op as usize];
            let available = op != taken && (group == NO_GROUP || !self.group_taken[group as usize]);
            if available {
                if input.deferrable[op as usize] {
                    self.pending_deferred.push(op);
                } else if input.observes[op as usize] {
                    self.pending_observers.push(op);
                }
            }
            node = self.next[node as usize];
        }
        !self.pending_observers.is_empty()
            && self.model.deferred_may_enable(
                &self.interner.states[after as usize],
                &input.ops,
                &self.pending_deferred,
                &self.pending_observers,
            )
    }

    /// Whether, after linearizing `taken` into state `after`, some pending observation can
    /// never become legal (see the module doc on growth pruning).
    fn growth_forbids(&self, taken: u32, after: u32) -> bool {
        let Some(growth) = &self.growth else {
            return false;
        };
        let state = &self.interner.states[after as usize];
        // The shortest orphan, wherever it is called: no reset may come before it any more.
        // (`taken` changes the state, so it is no observation, let alone an orphan.)
        if let Some(&(_, orphan)) = growth.orphans.iter().find(|&&(_, op)| op != taken) {
            if !self
                .model
                .reachable_without_resets(state, &self.input.ops[orphan as usize])
            {
                return true;
            }
        }
        // Pending observations (calls before the first return still in the list) and the
        // next ones to be called: every unlinearized observation comes after `taken`, so the
        // argument holds for each; the look-ahead (events past the first return) bounds the
        // cost per step. The watched list holds every return and the observations' calls.
        let mut node = growth.watched_next[0];
        let mut horizon = self.tail;
        while node != self.tail && node <= horizon {
            if !self.node_is_call[node as usize] {
                if horizon == self.tail {
                    horizon = node.saturating_add(growth.lookahead_nodes);
                }
                node = growth.watched_next[node as usize];
                continue;
            }
            let op = self.node_op[node as usize];
            if op != taken
                && growth.target[op as usize]
                && !self
                    .model
                    .reachable_without_resets(state, &self.input.ops[op as usize])
                && self.enablers_used_up(growth, op, taken)
            {
                return true;
            }
            node = growth.watched_next[node as usize];
        }
        false
    }

    /// Whether no reset left may be the base of observation `target` (see the module doc on
    /// growth pruning and `supply`): each is linearized, or needs a piece no unlinearized op
    /// other than `taken` can supply.
    fn enablers_used_up(&self, growth: &Growth, target: u32, taken: u32) -> bool {
        let first_entry = growth.enabler_starts[target as usize] as usize;
        growth
            .enablers(target)
            .iter()
            .enumerate()
            .all(|(offset, &reset)| {
                self.linearized.contains(reset)
                    || growth.supply.as_ref().is_some_and(|supply| {
                        supply.starved(first_entry + offset, target, taken, |op| {
                            self.linearized.contains(op)
                        })
                    })
            })
    }

    /// Whether, after linearizing `taken` into state `after`, no remaining observation can
    /// see the state (see the module doc on dead states): an unlinearized reset that must
    /// happen returns before every observation called after that return, and each observation
    /// called before it cannot be reached from `after` without a reset.
    fn state_is_dead(&self, taken: u32, after: u32) -> bool {
        let Some(growth) = &self.growth else {
            return false;
        };
        let state = &self.interner.states[after as usize];
        // Up to DEAD_STATE_LOOKAHEAD_NODES events from the first still in the list; only the
        // watched ones (returns, observations' calls) matter here.
        let horizon = self.next[0].saturating_add(DEAD_STATE_LOOKAHEAD_NODES as u32);
        let mut node = growth.watched_next[0];
        while node != self.tail && node < horizon {
            let op = self.node_op[node as usize];
            if op != taken {
                if !self.node_is_call[node as usize] {
                    if self.model.is_reset(&self.input.ops[op as usize]) {
                        return true;
                    }
                } else if growth.target[op as usize]
                    && self
                        .model
                        .reachable_without_resets(state, &self.input.ops[op as usize])
                {
                    return false;
                }
            }
            node = growth.watched_next[node as usize];
        }
        false
    }

    /// The call node of a pending invisible append (see `supply`), or `NO_NODE`.
    fn invisible_pending_call(&self) -> u32 {
        let Some(supply) = self
            .growth
            .as_ref()
            .and_then(|growth| growth.supply.as_ref())
        else {
            return NO_NODE;
        };
        let mut node = self.next[0];
        while node != self.tail && self.node_is_call[node as usize] {
            if supply.invisible(self.node_op[node as usize]) {
                return node;
            }
            node = self.next[node as usize];
        }
        NO_NODE
    }

    /// Prepares supply pruning once (see `supply`), for a search that has run long enough to
    /// be worth it.
    fn prepare_supply(&mut self) {
        let Some(growth) = &mut self.growth else {
            return;
        };
        if growth.supply_prepared {
            return;
        }
        growth.supply_prepared = true;
        // The most ops that must happen pending at once: how far apart related events are.
        let mut pending = 0u32;
        let mut most_pending = 0u32;
        for &(op, is_call) in &self.input.events {
            if self.input.must_happen[op as usize] {
                if is_call {
                    pending += 1;
                    most_pending = most_pending.max(pending);
                } else {
                    pending -= 1;
                }
            }
        }
        growth.lookahead_nodes = most_pending
            .saturating_mul(GROWTH_LOOKAHEAD_NODES_PER_PENDING)
            .clamp(GROWTH_LOOKAHEAD_NODES, GROWTH_LOOKAHEAD_NODES_MAX);
        growth.supply = Supply::prepare(
            self.model,
            self.input,
            &growth.enabler_starts,
            &growth.enabler_list,
        );
    }

    /// Adds `op` to the linearized set.
    #[inline]
    fn mark(&mut self, op: u32) {
        self.linearized.insert(op);
        if let Some(growth) = &mut self.growth {
            growth.on_mark(op, &self.linearized);
        }
        self.hash ^= self.zobrist[op as usize];
        if let Some(parts) = &mut self.parts {
            let part = self.input.component[op as usize] as usize;
            parts.sets[part].insert(parts.local[op as usize]);
            parts.hashes[part] ^= self.zobrist[op as usize];
        }
    }

    /// Removes `op` from the linearized set.
    #[inline]
    fn unmark(&mut self, op: u32) {
        self.linearized.remove(op);
        if let Some(growth) = &mut self.growth {
            growth.on_unmark(op, &self.linearized);
        }
        self.hash ^= self.zobrist[op as usize];
        if let Some(parts) = &mut self.parts {
            let part = self.input.component[op as usize] as usize;
            parts.sets[part].remove(parts.local[op as usize]);
            parts.hashes[part] ^= self.zobrist[op as usize];
        }
    }

    /// The id of `part`'s state in `full`; `None` if it has none yet and no `owner` (the
    /// interned id of `full`) is given to create one.
    fn part_state_id(
        model: &M,
        parts: &mut Parts,
        states: &[M::State],
        part: u32,
        full: &M::State,
        owner: Option<u32>,
    ) -> Option<u32> {
        let hash = model.component_hash(full, part);
        let owners = &parts.state_owners;
        let same = |id: &u32| {
            let (owner_part, owner) = owners[*id as usize];
            owner_part == part && model.component_eq(&states[owner as usize], full, part)
        };
        if let Some(ids) = parts.state_ids.get(&(part, hash)) {
            if let Some(&id) = ids.iter().find(|id| same(id)) {
                return Some(id);
            }
        }
        let owner = owner?;
        let id = parts.state_owners.len() as u32;
        assert!(id < NO_PART, "part state ids fit in u32");
        parts.state_owners.push((part, owner));
        parts.state_ids.entry((part, hash)).or_default().push(id);
        Some(id)
    }

    /// The key of `part`'s configuration in `Parts::failing`, for part state `part_state`.
    fn part_key(parts: &Parts, part: u32, part_state: u32) -> (u64, u32, &[u64]) {
        let hash = parts.hashes[part as usize]
            ^ u64::from(part_state)
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (full_words, tail) = parts.sets[part as usize].compact();
        (hash, full_words, tail)
    }

    /// Whether `part`'s configuration (its linearized ops now, its state in `full`) is known
    /// to fail.
    fn known_to_fail_state(&mut self, part: u32, full: &M::State) -> bool {
        let parts = self.parts.as_mut().expect("checked by the caller");
        let states = &self.interner.states;
        let Some(part_state) = Self::part_state_id(self.model, parts, states, part, full, None)
        else {
            return false;
        };
        let (hash, full_words, tail) = Self::part_key(parts, part, part_state);
        parts.failing.contains(hash, part_state, full_words, tail)
    }

    /// As `known_to_fail_state`, for an interned state.
    fn known_to_fail(&mut self, part: u32, state: u32) -> bool {
        debug_assert!(state != NO_STATE && state != NOT_INTERNED);
        let parts = self.parts.as_mut().expect("checked by the caller");
        let states = &self.interner.states;
        let full = &states[state as usize];
        let Some(part_state) = Self::part_state_id(self.model, parts, states, part, full, None)
        else {
            return false;
        };
        let (hash, full_words, tail) = Self::part_key(parts, part, part_state);
        parts.failing.contains(hash, part_state, full_words, tail)
    }

    /// Records that `part`'s configuration now (its linearized ops and its state in the
    /// current state) cannot be completed.
    fn learn_failure(&mut self, part: u32) {
        let parts = self.parts.as_mut().expect("checked by the caller");
        let states = &self.interner.states;
        let full = &states[self.state as usize];
        let part_state =
            Self::part_state_id(self.model, parts, states, part, full, Some(self.state))
                .expect("created");
        let hash = parts.hashes[part as usize]
            ^ u64::from(part_state)
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (full_words, tail) = parts.sets[part as usize].compact();
        parts
            .failing
            .insert_entry(hash, part_state, full_words, tail, part);
    }

    fn run_steps(&mut self, max_steps: u64, budget: &Budget) -> Progress {
        if let Some(exhausted) = self.account(budget) {
            return Progress::Done(SearchResult::Exhausted(exhausted));
        }
        if self.steps >= budget.supply_after_steps {
            self.prepare_supply();
        }
        let stop_at = self.steps.saturating_add(max_steps);
        let input = self.input;
        let model = self.model;
        let mut entry = self.entry;
        let mut failure_part: u32;
        let result = loop {
            if self.must_remaining == 0 {
                break SearchResult::Linearizable;
            }
            self.steps += 1;
            if self.steps % BUDGET_CHECK_INTERVAL == 0 {
                if self.steps >= budget.supply_after_steps {
                    self.prepare_supply();
                }
                if let Some(exhausted) = self.account(budget) {
                    break SearchResult::Exhausted(exhausted);
                }
            }
            if self.steps >= stop_at {
                self.entry = entry;
                return Progress::Paused;
            }
            if self.unreachable_from_start && self.steps > STEPS_WHEN_NEVER_LEGAL {
                break SearchResult::NotLinearizable {
                    longest_prefix: self.longest_prefix(),
                };
            }
            debug_assert!(
                entry != self.tail,
                "an ok op remains, so its return precedes the tail"
            );
            let node = entry as usize;
            let op = self.node_op[node];
            if self.node_is_call[node] {
                if self.forced_call != NO_NODE && entry != self.forced_call {
                    // A dead configuration takes its invisible append and nothing else.
                    entry = self.next[node];
                    continue;
                }
                let class = input.twin_class[op as usize];
                if class != NO_TWINS
                    && self.twin_members[class as usize][self.twins_taken[class as usize] as usize]
                        != op
                {
                    // A later twin of an earlier-called, unlinearized one: symmetric to it.
                    entry = self.next[node];
                    continue;
                }
                let group = input.exclusive_group[op as usize];
                if group != NO_GROUP && self.group_taken[group as usize] {
                    // Another way this in-doubt op may have happened is already taken.
                    entry = self.next[node];
                    continue;
                }
                let deferred = self.defer && input.deferrable[op as usize];
                if self.in_block && !deferred && !input.observes[op as usize] {
                    // A block of deferred ops ends just before an op that observes the state.
                    entry = self.next[node];
                    continue;
                }
                if self.in_block && deferred && self.blocks_of_one {
                    // Each deferred op overwrites the one before it: a block needs only its last.
                    entry = self.next[node];
                    continue;
                }
                let key = (u64::from(self.state) << 32) | u64::from(op);
                // With parts, a new successor state is interned only once it is known not to
                // fail at once: most successors of a map search are pruned by a failed part.
                let mut fresh: Option<M::State> = None;
                let mut after = match self.transitions.get(key) {
                    Some(after) => after,
                    None => {
                        let after = match model.step(
                            &self.interner.states[self.state as usize],
                            &input.ops[op as usize],
                        ) {
                            // An observer never changes the state: no need to look it up.
                            Some(_) if input.observer[op as usize] => self.state,
                            Some(next_state) if self.parts.is_some() => {
                                fresh = Some(next_state);
                                NOT_INTERNED
                            }
                            Some(next_state) => self
                                .interner
                                .intern(next_state, |state| model.state_heap_bytes(state)),
                            None => NO_STATE,
                        };
                        if after != NOT_INTERNED {
                            self.transitions.put(key, after);
                        }
                        after
                    }
                };
                if after != NO_STATE
                    && after != self.state
                    && after != NOT_INTERNED
                    && self.growth_forbids(op, after)
                {
                    // The successor has no completion: a pending observation is out of reach.
                    entry = self.next[node];
                    continue;
                }
                if after != NO_STATE
                    && after != self.state
                    && after != NOT_INTERNED
                    && self.pending_forbids(op, after)
                {
                    // The successor has no completion: a pending op can never become legal.
                    entry = self.next[node];
                    continue;
                }
                if deferred && after != NO_STATE && !self.block_may_end(op, after) {
                    // No block starting or going on with this op can end.
                    entry = self.next[node];
                    continue;
                }
                if after != NO_STATE {
                    self.mark(op);
                    let observer = input.observer[op as usize];
                    let part = input.component[op as usize];
                    let part_fails = self.parts.is_some()
                        && match &fresh {
                            Some(state) => self.known_to_fail_state(part, state),
                            None => self.known_to_fail(part, after),
                        };
                    // The part that fails in the successor configuration, when it is known
                    // to fail (only tracked for models of several parts). A successor pruned
                    // by its part is not stored: finding it again costs one lookup.
                    let mut cache_entry = u32::MAX;
                    let mut successor_dead = false;
                    let successor_fails_in = if part_fails {
                        Some(part)
                    } else {
                        if let Some(state) = fresh.take() {
                            after = self
                                .interner
                                .intern(state, |state| model.state_heap_bytes(state));
                            self.transitions.put(key, after);
                        }
                        // A state no remaining observation can see is remembered as any
                        // other such state (see the module doc on dead states).
                        let key_state = if self.state_is_dead(op, after) {
                            successor_dead = true;
                            DEAD_STATE
                        } else if deferred {
                            // Inside a block the continuations differ (see the module doc).
                            assert!(after < IN_BLOCK, "state ids fit in 31 bits with deferral");
                            after | IN_BLOCK
                        } else {
                            after
                        };
                        let combined = self.hash
                            ^ u64::from(key_state)
                                .wrapping_add(1)
                                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        let (full_words, tail) = self.linearized.compact();
                        let (inserted, entry_number) = self
                            .cache
                            .insert_entry(combined, key_state, full_words, tail, NO_PART);
                        cache_entry = entry_number;
                        (!inserted).then(|| self.cache.tag(entry_number))
                    };
                    if successor_fails_in.is_none() {
                        // A greedy observer, or a dead configuration's invisible append: if
                        // the successor fails, so does this configuration.
                        let marked = if observer || entry == self.forced_call {
                            entry | FORCED
                        } else {
                            entry
                        };
                        self.stack.push((marked, self.state, cache_entry));
                        self.state = after;
                        let must = input.must_happen[op as usize];
                        let ret = must.then(|| self.return_node[op as usize]);
                        lift(&mut self.next, &mut self.prev, entry, ret);
                        if let Some(growth) = &mut self.growth {
                            let call = growth.target[op as usize].then_some(entry);
                            lift_watched(growth, call, ret);
                        }
                        if must {
                            self.must_remaining -= 1;
                        }
                        if class != NO_TWINS {
                            self.twins_taken[class as usize] += 1;
                        }
                        if group != NO_GROUP {
                            self.group_taken[group as usize] = true;
                        }
                        self.in_block = deferred;
                        self.forced_call = if successor_dead {
                            self.invisible_pending_call()
                        } else {
                            NO_NODE
                        };
                        entry = if self.forced_call == NO_NODE {
                            self.next[0]
                        } else {
                            self.forced_call
                        };
                        continue;
                    }
                    self.unmark(op);
                    let failed_part = successor_fails_in.expect("known to fail");
                    if self.parts.is_some() && failed_part != part {
                        // The successor failed in a part this op does not touch, and that
                        // part is the same here: this configuration fails too.
                        debug_assert_ne!(failed_part, NO_PART, "failed entries are tagged");
                        failure_part = failed_part;
                    } else if !observer {
                        entry = self.next[node];
                        continue;
                    } else {
                        // A legal observer whose successor configuration already failed: this
                        // configuration fails too (see `FORCED`), so fall through to backtrack.
                        failure_part = part;
                    }
                } else {
                    entry = self.next[node];
                    continue;
                }
            } else {
                // The return of an op not yet linearized: its part cannot be completed.
                failure_part = input.component[op as usize];
            }
            // Backtrack: the current configuration cannot be completed. Observers were taken
            // greedily, so a configuration reached by one fails along with it.
            if self.stack.len() > self.longest.len() {
                self.longest.clear();
                let node_op = &self.node_op;
                self.longest.extend(
                    self.stack
                        .iter()
                        .map(|&(call, _, _)| node_op[(call & !FORCED) as usize]),
                );
            }
            // Whether some configuration on the path still has untried candidates.
            let mut resumed = false;
            // A configuration that forced a call has no other successor: it fails with it.
            self.forced_call = NO_NODE;
            while let Some((marked, before, cache_entry)) = self.stack.pop() {
                let call = marked & !FORCED;
                let popped = self.node_op[call as usize];
                let part = input.component[popped as usize];
                if self.parts.is_some() {
                    self.cache.set_tag(cache_entry, failure_part);
                    if part == failure_part {
                        // Below this frame the part did not change: learn it once, here.
                        self.learn_failure(failure_part);
                    }
                }
                self.unmark(popped);
                self.state = before;
                let must = input.must_happen[popped as usize];
                let ret = must.then(|| self.return_node[popped as usize]);
                unlift(&mut self.next, &mut self.prev, call, ret);
                if let Some(growth) = &mut self.growth {
                    let watched_call = growth.target[popped as usize].then_some(call);
                    unlift_watched(growth, watched_call, ret);
                }
                if must {
                    self.must_remaining += 1;
                }
                let class = input.twin_class[popped as usize];
                if class != NO_TWINS {
                    let taken = &mut self.twins_taken[class as usize];
                    *taken -= 1;
                    debug_assert_eq!(
                        self.twin_members[class as usize][*taken as usize], popped,
                        "twins are linearized and undone in call order"
                    );
                }
                let group = input.exclusive_group[popped as usize];
                if group != NO_GROUP {
                    debug_assert!(self.group_taken[group as usize]);
                    self.group_taken[group as usize] = false;
                }
                entry = self.next[call as usize];
                // A configuration whose greedy observer successor failed fails too; so does
                // one whose successor failed in a part other than the popped op's (that part
                // is the same in both).
                let parent_fails =
                    marked & FORCED != 0 || (self.parts.is_some() && part != failure_part);
                if !parent_fails {
                    resumed = true;
                    break;
                }
            }
            self.in_block = self.defer
                && self.stack.last().is_some_and(|&(marked, _, _)| {
                    input.deferrable[self.node_op[(marked & !FORCED) as usize] as usize]
                });
            if !resumed {
                break SearchResult::NotLinearizable {
                    longest_prefix: std::mem::take(&mut self.longest),
                };
            }
        };
        self.entry = entry;
        Progress::Done(result)
    }
}

/// A lossy, direct-mapped memo of model steps: (state id, op) -> next state id. A miss only
/// costs a model step, and a bounded size keeps it in the processor's cache, where a growing
/// map of every transition would not be. It starts small and doubles as slots fill, up to a
/// size set by the op count: most objects of a keyed history take a few dozen distinct
/// transitions, and zeroing a full-size table for each cost a small history's check more
/// than its search.
struct TransitionMemo {
    keys: Vec<u64>,
    values: Vec<u32>,
    mask: usize,
    /// Occupied slots; past half of them the table doubles, until `max_slots`.
    filled: usize,
    max_slots: usize,
}

impl TransitionMemo {
    fn new(op_count: usize) -> TransitionMemo {
        let max_slots = (op_count * 16).next_power_of_two().clamp(1 << 10, 1 << 14);
        // Two slots per op to start: an object of a few dozen ops stays under 2 KB, and a
        // large one does not pay for many doublings (or their misses) on its way up.
        let first_slots = (op_count * 2).next_power_of_two().clamp(64, max_slots);
        TransitionMemo::with_slots(first_slots, max_slots)
    }

    fn with_slots(slots: usize, max_slots: usize) -> TransitionMemo {
        assert!(slots.is_power_of_two() && slots <= max_slots);
        TransitionMemo {
            // Keys are stored complemented, so that an all-zero table (fresh pages from the
            // allocator, no fill) is empty: no key is all ones (its state would be NO_STATE).
            keys: vec![0; slots],
            values: vec![0; slots],
            mask: slots - 1,
            filled: 0,
            max_slots,
        }
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & self.mask
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let slot = self.slot(key);
        (self.keys[slot] == !key).then(|| self.values[slot])
    }

    #[inline(always)]
    fn put(&mut self, key: u64, value: u32) {
        debug_assert_ne!(key, u64::MAX, "state NO_STATE is never a source");
        let mut slot = self.slot(key);
        if self.keys[slot] == 0 {
            self.filled += 1;
            if self.filled * 2 > self.keys.len() && self.keys.len() < self.max_slots {
                self.grow();
                slot = self.slot(key);
            }
        }
        self.keys[slot] = !key;
        self.values[slot] = value;
    }

    /// Doubles the table, keeping what fits (two old entries may meet in one slot: a memo
    /// may forget).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut grown = TransitionMemo::with_slots(self.keys.len() * 2, self.max_slots);
        for (&stored, &value) in self.keys.iter().zip(&self.values) {
            if stored != 0 {
                let slot = grown.slot(!stored);
                grown.filled += usize::from(grown.keys[slot] == 0);
                grown.keys[slot] = stored;
                grown.values[slot] = value;
            }
        }
        *self = grown;
    }

    fn bytes(&self) -> u64 {
        (self.keys.len() * 12) as u64
    }
}

fn over_budget(budget: &Budget) -> Option<Exhausted> {
    match budget.exhausted.load(Ordering::Relaxed) {
        1 => return Some(Exhausted::Time),
        2 => return Some(Exhausted::Memory),
        _ => {}
    }
    if let Some(limit) = budget.memory_limit_bytes {
        if budget.memory_in_use.load(Ordering::Relaxed) > limit {
            let _ = budget
                .exhausted
                .compare_exchange(0, 2, Ordering::Relaxed, Ordering::Relaxed);
            return Some(Exhausted::Memory);
        }
    }
    if let Some(deadline) = budget.deadline {
        if Instant::now() >= deadline {
            let _ = budget
                .exhausted
                .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed);
            return Some(Exhausted::Time);
        }
    }
    None
}

#[inline]
fn lift(next: &mut [u32], prev: &mut [u32], call: u32, ret: Option<u32>) {
    let call = call as usize;
    next[prev[call] as usize] = next[call];
    prev[next[call] as usize] = prev[call];
    if let Some(ret) = ret {
        let ret = ret as usize;
        next[prev[ret] as usize] = next[ret];
        prev[next[ret] as usize] = prev[ret];
    }
}

/// Per op, the positions in `events` of its call and of its return (`u32::MAX` when it has
/// none).
pub(crate) fn event_positions(events: &[(u32, bool)], op_count: usize) -> (Vec<u32>, Vec<u32>) {
    let mut call_event = vec![u32::MAX; op_count];
    let mut return_event = vec![u32::MAX; op_count];
    for (event, &(op, is_call)) in events.iter().enumerate() {
        if is_call {
            call_event[op as usize] = event as u32;
        } else {
            return_event[op as usize] = event as u32;
        }
    }
    (call_event, return_event)
}

/// Searches holding at least this many bytes are freed on a thread of their own.
const FREE_ASIDE_BYTES: u64 = 64 << 20;

/// Drops a finished search's memory, off the caller's thread when it is large: freeing
/// millions of small states took more than a second after a time limit had already passed
/// (a 1 GiB whole-map search answered 1.5 s late), and the verdict need not wait for it.
fn free_aside<T: Send + 'static>(garbage: T, bytes: u64) {
    if bytes < FREE_ASIDE_BYTES {
        drop(garbage);
        return;
    }
    // If no thread can be started, the closure and its garbage are dropped here instead.
    let _ = std::thread::Builder::new()
        .name("minos-free".to_string())
        .spawn(move || drop(garbage));
}

/// `lift` for the watched list of growth pruning: the op's call if watched, and its return.
#[inline]
fn lift_watched(growth: &mut Growth, call: Option<u32>, ret: Option<u32>) {
    for node in [call, ret].into_iter().flatten() {
        let node = node as usize;
        let (before, after) = (growth.watched_prev[node], growth.watched_next[node]);
        growth.watched_next[before as usize] = after;
        growth.watched_prev[after as usize] = before;
    }
}

/// Undoes `lift_watched`, in reverse order.
#[inline]
fn unlift_watched(growth: &mut Growth, call: Option<u32>, ret: Option<u32>) {
    for node in [ret, call].into_iter().flatten() {
        let index = node as usize;
        let (before, after) = (growth.watched_prev[index], growth.watched_next[index]);
        growth.watched_next[before as usize] = node;
        growth.watched_prev[after as usize] = node;
    }
}

#[inline]
fn unlift(next: &mut [u32], prev: &mut [u32], call: u32, ret: Option<u32>) {
    if let Some(ret) = ret {
        let ret_index = ret as usize;
        next[prev[ret_index] as usize] = ret;
        prev[next[ret_index] as usize] = ret;
    }
    let call_index = call as usize;
    next[prev[call_index] as usize] = call;
    prev[next[call_index] as usize] = call;
}
