//! `Keyed<M>`: many independent objects of model `M`, one per key, checked as one object
//! (`--no-partition`). The state is the whole map; each slot keeps its hash so hashing and
//! comparing a map state costs one word per key.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;

use super::Model;
use crate::fxhash::hash_one;
use crate::history::{Name, Operation};

pub struct Keyed<M: Model> {
    inner: M,
    /// Key names by slot, in sorted order.
    keys: Vec<Option<String>>,
    slots: BTreeMap<Option<Name>, u32>,
    init: KeyedState<M::State>,
}

#[derive(Clone, Debug)]
pub struct KeyedState<S> {
    slots: Arc<[(u64, Arc<S>)]>,
}

impl<S: Eq> PartialEq for KeyedState<S> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
            || self.slots.iter().zip(other.slots.iter()).all(
                |((hash, state), (other_hash, other_state))| {
                    hash == other_hash && (Arc::ptr_eq(state, other_state) || state == other_state)
                },
            )
    }
}

impl<S: Eq> Eq for KeyedState<S> {}

impl<S> Hash for KeyedState<S> {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        for (hash, _) in self.slots.iter() {
            hasher.write_u64(*hash);
        }
    }
}

#[derive(Clone)]
pub struct KeyedOp<O> {
    slot: u32,
    op: O,
}

impl<M: Model> Keyed<M> {
    /// `keys`: every key of the history (`None` for ops without one); `init_for` gives each
    /// key's initial state.
    pub fn new(
        inner: M,
        keys: Vec<Option<String>>,
        init_for: impl Fn(&Option<String>) -> M::State,
    ) -> Keyed<M> {
        let mut keys = keys;
        keys.sort();
        keys.dedup();
        let slots = keys
            .iter()
            .enumerate()
            .map(|(slot, key)| (key.as_deref().map(Name::from), slot as u32))
            .collect();
        let init: Vec<(u64, Arc<M::State>)> = keys
            .iter()
            .map(|key| {
                let state = init_for(key);
                (hash_one(&state), Arc::new(state))
            })
            .collect();
        Keyed {
            inner,
            keys,
            slots,
            init: KeyedState { slots: init.into() },
        }
    }

    fn key_label(&self, slot: u32) -> String {
        match &self.keys[slot as usize] {
            Some(key) => format!("key {key:?}"),
            None => "the unkeyed object".to_string(),
        }
    }
}

impl<M: Model> Model for Keyed<M>
where
    M::State: Send + Sync,
{
    type State = KeyedState<M::State>;
    type Op = KeyedOp<M::Op>;

    fn init_state(&self) -> Self::State {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<Self::Op, String> {
        let slot = *self
            .slots
            .get(&op.key)
            .ok_or_else(|| format!("key {:?} was not announced", op.key))?;
        Ok(KeyedOp {
            slot,
            op: self.inner.compile(op)?,
        })
    }

    fn compiled_all(&self) {
        self.inner.compiled_all();
    }

    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State> {
        let slot = op.slot as usize;
        let after = self.inner.step(&state.slots[slot].1, &op.op)?;
        let hash = hash_one(&after);
        let mut slots: Vec<(u64, Arc<M::State>)> = state.slots.to_vec();
        slots[slot] = (hash, Arc::new(after));
        Some(KeyedState {
            slots: slots.into(),
        })
    }

    fn why_illegal(&self, state: &Self::State, op: &Self::Op) -> String {
        format!(
            "{}: {}",
            self.key_label(op.slot),
            self.inner
                .why_illegal(&state.slots[op.slot as usize].1, &op.op)
        )
    }

    fn state_json(&self, state: &Self::State) -> Value {
        let mut object = serde_json::Map::new();
        for (slot, (_, sub_state)) in state.slots.iter().enumerate() {
            let key = self.keys[slot].clone().unwrap_or_default();
            object.insert(key, self.inner.state_json(sub_state));
        }
        Value::Object(object)
    }

    fn changes_state(&self, op: &Self::Op) -> bool {
        self.inner.changes_state(&op.op)
    }

    fn constrains(&self, op: &Self::Op) -> bool {
        self.inner.constrains(&op.op)
    }

    fn in_doubt_variants(&self, op: &Self::Op, object_ops: &[&Self::Op]) -> Vec<Self::Op> {
        // Each key is its own object: only the ops of the same key say what it may have done.
        let same_key: Vec<&M::Op> = object_ops
            .iter()
            .filter(|other| other.slot == op.slot)
            .map(|other| &other.op)
            .collect();
        self.inner
            .in_doubt_variants(&op.op, &same_key)
            .into_iter()
            .map(|variant| KeyedOp {
                slot: op.slot,
                op: variant,
            })
            .collect()
    }

    fn component(&self, op: &Self::Op) -> u32 {
        op.slot
    }

    fn component_hash(&self, state: &Self::State, component: u32) -> u64 {
        state.slots[component as usize].0
    }

    fn component_eq(&self, left: &Self::State, right: &Self::State, component: u32) -> bool {
        let (left_hash, left_state) = &left.slots[component as usize];
        let (right_hash, right_state) = &right.slots[component as usize];
        left_hash == right_hash
            && (Arc::ptr_eq(left_state, right_state) || left_state == right_state)
    }

    fn state_heap_bytes(&self, state: &Self::State) -> usize {
        // A new map state shares every slot but one with its predecessor: count the slot
        // array, and one sub-state of average size with its allocation.
        let slots = state.slots.len().max(1);
        let sub_heap: usize = state
            .slots
            .iter()
            .map(|(_, sub)| self.inner.state_heap_bytes(sub))
            .sum();
        32 + slots * 16 + 32 + std::mem::size_of::<M::State>() + sub_heap / slots
    }
}
