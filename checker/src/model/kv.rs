//! Porcupine's kv model, one key: a string with get/put/append (initially "").
//!
//! States are persistent: an appended string is a node (previous string, suffix), sharing
//! everything before it, so the search's many states cost a few words each instead of a copy
//! of the whole string. A polynomial hash and the length are kept up to date on append, so
//! hashing is O(1); equality is exact (structural when possible, by content otherwise).

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{known_output, unknown_f, Model};
use crate::fxhash::FxHashMap;
use crate::history::Operation;

pub struct Kv {
    init: KvState,
    /// The whole strings compiled since the last `compiled_all` (gets' results, puts'
    /// values), each kept once: a key's value is read by many gets between two appends, and
    /// each get holding its own copy made the compiled ops as large as the history. Emptied by
    /// `compiled_all`, refilled by later compiles (explanations).
    whole_strings: Mutex<FxHashMap<Arc<str>, KvState>>,
}

/// `previous` (none for a whole string: the initial value or a put) followed by `text`.
#[derive(Debug)]
struct Node {
    previous: Option<Arc<Node>>,
    text: Arc<str>,
}

impl Drop for Node {
    /// Iterative, so that dropping a chain of many appends cannot overflow the stack.
    fn drop(&mut self) {
        let mut next = self.previous.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut unique) => next = unique.previous.take(),
                Err(_) => break,
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct KvState {
    hash: u64,
    len: usize,
    node: Arc<Node>,
}

impl KvState {
    fn whole(text: Arc<str>) -> KvState {
        KvState {
            hash: poly_hash(&text).0,
            len: text.len(),
            node: Arc::new(Node {
                previous: None,
                text,
            }),
        }
    }

    /// The string's bytes when it is one piece (a record's value, not built by appends).
    fn whole_bytes(&self) -> Option<&[u8]> {
        self.node
            .previous
            .is_none()
            .then(|| self.node.text.as_bytes())
    }

    /// The string, materialised (explanations and rare equality fallbacks only).
    fn text(&self) -> String {
        let mut pieces = Vec::new();
        let mut node = Some(&self.node);
        while let Some(current) = node {
            pieces.push(current.text.as_ref());
            node = current.previous.as_ref();
        }
        let mut text = String::with_capacity(self.len);
        for piece in pieces.iter().rev() {
            text.push_str(piece);
        }
        debug_assert_eq!(text.len(), self.len);
        text
    }
}

/// Cheap structural equality: the same nodes, or the same texts after the same nodes.
fn same_structure(left: &Arc<Node>, right: &Arc<Node>) -> bool {
    let (mut left, mut right) = (left, right);
    loop {
        if Arc::ptr_eq(left, right) {
            return true;
        }
        if !Arc::ptr_eq(&left.text, &right.text) {
            return false;
        }
        match (&left.previous, &right.previous) {
            (Some(left_previous), Some(right_previous)) => {
                left = left_previous;
                right = right_previous;
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether the string of `chain` (of length `whole.len()`) is `whole`, piece by piece from
/// its end: a get's value against the string appends built, with no copy of either.
fn chain_equals(chain: &Arc<Node>, whole: &[u8]) -> bool {
    let mut end = whole.len();
    let mut node = Some(chain);
    while let Some(current) = node {
        let piece = current.text.as_bytes();
        let Some(start) = end.checked_sub(piece.len()) else {
            return false;
        };
        if whole[start..end] != *piece {
            return false;
        }
        end = start;
        node = current.previous.as_ref();
    }
    end == 0
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.len == other.len
            && (same_structure(&self.node, &other.node)
                || match (self.whole_bytes(), other.whole_bytes()) {
                    (Some(whole), _) => chain_equals(&other.node, whole),
                    (None, Some(whole)) => chain_equals(&self.node, whole),
                    (None, None) => self.text() == other.text(),
                })
    }
}

impl Eq for KvState {}

impl std::hash::Hash for KvState {
    fn hash<H: std::hash::Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.hash);
    }
}

const BASE: u64 = 0x0000_0100_0000_01b3;

/// (hash of `text`, BASE^len) with wrapping arithmetic.
fn poly_hash(text: &str) -> (u64, u64) {
    text.bytes().fold((0u64, 1u64), |(hash, power), byte| {
        (
            hash.wrapping_mul(BASE).wrapping_add(u64::from(byte) + 1),
            power.wrapping_mul(BASE),
        )
    })
}

/// A necessary condition for `prefix`'s string to be a prefix of `whole`'s: exact when it
/// answers false, cheap (the last appended piece only, plus the hash at equal lengths) so the
/// search can ask it at every step. The search asks after every step that changes the state,
/// so a wrong piece is caught by the gets pending when it is appended. `whole` is a get's value,
/// stored as one piece.
fn is_prefix(prefix: &KvState, whole: &KvState) -> bool {
    if prefix.len > whole.len || (prefix.len == whole.len && prefix.hash != whole.hash) {
        return false;
    }
    if whole.node.previous.is_some() {
        // A value built by appends (never from a history record): no single text to compare.
        return true;
    }
    let piece = prefix.node.text.as_bytes();
    let start = prefix.len - piece.len();
    whole.node.text.as_bytes()[start..prefix.len] == *piece
}

#[derive(Clone)]
pub struct Suffix {
    text: Arc<str>,
    hash: u64,
    power: u64,
}

#[derive(Clone)]
pub enum KvOp {
    Get(Option<KvState>),
    Put(KvState),
    Append(Suffix),
}

fn expect_string(value: &Value, what: &str) -> Result<Arc<str>, String> {
    value
        .as_str()
        .map(Arc::from)
        .ok_or_else(|| format!("{what} must be a string, found {value}"))
}

impl Kv {
    pub fn new(init: Option<&Value>) -> Result<Kv, String> {
        let init = match init {
            None | Some(Value::Null) => Arc::from(""),
            Some(value) => expect_string(value, "kv --init")?,
        };
        Ok(Kv {
            init: KvState::whole(init),
            whole_strings: Mutex::new(FxHashMap::default()),
        })
    }

    /// The state of the whole string `value` (a record's string), shared with every other op
    /// that recorded the same string.
    fn whole(&self, value: &Value, what: &str) -> Result<KvState, String> {
        let text = value
            .as_str()
            .ok_or_else(|| format!("{what} must be a string, found {value}"))?;
        let mut strings = self
            .whole_strings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(state) = strings.get(text) {
            return Ok(state.clone());
        }
        let state = KvState::whole(Arc::from(text));
        strings.insert(state.node.text.clone(), state.clone());
        Ok(state)
    }
}

impl Model for Kv {
    type State = KvState;
    type Op = KvOp;

    fn init_state(&self) -> KvState {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<KvOp, String> {
        match op.f.as_str() {
            "get" | "read" => Ok(KvOp::Get(
                known_output(op)
                    .map(|value| self.whole(value, "get result"))
                    .transpose()?,
            )),
            "put" | "write" => Ok(KvOp::Put(self.whole(&op.invoke_value, "put value")?)),
            "append" => {
                let text = expect_string(&op.invoke_value, "append value")?;
                let (hash, power) = poly_hash(&text);
                Ok(KvOp::Append(Suffix { text, hash, power }))
            }
            other => Err(unknown_f("kv", other, "get, put, append")),
        }
    }

    /// The ops hold their strings; the table that shared them between ops is no longer worth
    /// its memory (a few words per distinct string, for every object until the check ends).
    fn compiled_all(&self) {
        *self
            .whole_strings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = FxHashMap::default();
    }

    #[inline]
    fn step(&self, state: &KvState, op: &KvOp) -> Option<KvState> {
        match op {
            KvOp::Get(None) => Some(state.clone()),
            KvOp::Get(Some(value)) => (value == state).then(|| state.clone()),
            KvOp::Put(value) => Some(value.clone()),
            KvOp::Append(suffix) if suffix.text.is_empty() => Some(state.clone()),
            KvOp::Append(suffix) => Some(KvState {
                hash: state
                    .hash
                    .wrapping_mul(suffix.power)
                    .wrapping_add(suffix.hash),
                len: state.len + suffix.text.len(),
                node: Arc::new(Node {
                    previous: Some(state.node.clone()),
                    text: suffix.text.clone(),
                }),
            }),
        }
    }

    fn why_illegal(&self, state: &KvState, op: &KvOp) -> String {
        match op {
            KvOp::Get(Some(value)) => {
                format!(
                    "get returned {:?} but the value is {:?}",
                    value.text(),
                    state.text()
                )
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &KvState) -> Value {
        Value::String(state.text())
    }

    fn changes_state(&self, op: &KvOp) -> bool {
        !matches!(op, KvOp::Get(_))
    }

    fn constrains(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(Some(_)))
    }

    fn grows_between_resets(&self) -> bool {
        true
    }

    fn is_reset(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Put(_))
    }

    /// Appends only extend the string and gets keep it, so a get of `value` can become legal
    /// without a put only if the string now is a prefix of `value`.
    fn reachable_without_resets(&self, state: &KvState, op: &KvOp) -> bool {
        match op {
            KvOp::Get(Some(value)) => is_prefix(state, value),
            _ => true,
        }
    }

    fn reset_may_enable(&self, reset: &KvOp, op: &KvOp) -> bool {
        match (reset, op) {
            (KvOp::Put(written), KvOp::Get(Some(value))) => is_prefix(written, value),
            _ => true,
        }
    }

    fn reset_bytes<'o>(&self, reset: &'o KvOp) -> Option<&'o [u8]> {
        match reset {
            KvOp::Put(written) => written.whole_bytes(),
            _ => None,
        }
    }

    fn observed_bytes<'o>(&self, op: &'o KvOp) -> Option<&'o [u8]> {
        match op {
            KvOp::Get(Some(value)) => value.whole_bytes(),
            _ => None,
        }
    }

    fn init_bytes(&self) -> Option<&[u8]> {
        self.init.whole_bytes()
    }

    fn appended_bytes<'o>(&self, op: &'o KvOp) -> Option<&'o [u8]> {
        match op {
            KvOp::Append(suffix) => Some(suffix.text.as_bytes()),
            _ => None,
        }
    }

    fn state_heap_bytes(&self, _state: &KvState) -> usize {
        // One node: reference counts, the previous node, the shared suffix.
        48
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(model: &Kv, state: &KvState, text: &str) -> KvState {
        let (hash, power) = poly_hash(text);
        model
            .step(
                state,
                &KvOp::Append(Suffix {
                    text: Arc::from(text),
                    hash,
                    power,
                }),
            )
            .unwrap()
    }

    #[test]
    fn appended_states_equal_by_content_and_hash_consistently() {
        let model = Kv::new(None).unwrap();
        let init = model.init_state();
        let ab = append(&model, &append(&model, &init, "a"), "b");
        let ab_at_once = append(&model, &init, "ab");
        assert_eq!(ab, ab_at_once);
        assert_eq!(
            crate::fxhash::hash_one(&ab),
            crate::fxhash::hash_one(&ab_at_once)
        );
        assert_eq!(ab, KvState::whole(Arc::from("ab")));
        assert_ne!(ab, append(&model, &append(&model, &init, "b"), "a"));
        assert_eq!(ab.text(), "ab");
        assert!(model
            .step(&ab, &KvOp::Get(Some(KvState::whole(Arc::from("ab")))))
            .is_some());
        assert!(model
            .step(&ab, &KvOp::Get(Some(KvState::whole(Arc::from("ba")))))
            .is_none());
    }

    fn get_returning(text: &str) -> Operation {
        use crate::history::{Name, Outcome, Output};
        Operation {
            index: 0,
            completion_index: Some(1),
            process: 0,
            process_name: None,
            f: Name::from("get"),
            key: None,
            invoke_value: Value::Null,
            outcome: Outcome::Ok(Output::Known(Value::from(text))),
            completion_value: None,
            line: 1,
        }
    }

    #[test]
    fn compiles_after_compiled_all_read_the_same_strings() {
        let model = Kv::new(None).unwrap();
        let KvOp::Get(Some(before)) = model.compile(&get_returning("ab")).unwrap() else {
            panic!("a get with a known result");
        };
        model.compiled_all();
        assert!(model.whole_strings.lock().unwrap().is_empty());
        let KvOp::Get(Some(after)) = model.compile(&get_returning("ab")).unwrap() else {
            panic!("a get with a known result");
        };
        assert!(
            !Arc::ptr_eq(&before.node, &after.node),
            "the table was emptied"
        );
        assert_eq!(before, after);
        let built = append(&model, &append(&model, &model.init_state(), "a"), "b");
        for get in [before, after] {
            assert!(model.step(&built, &KvOp::Get(Some(get))).is_some());
        }
    }

    #[test]
    fn long_append_chains_drop_without_deep_recursion() {
        let worker = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
            let model = Kv::new(None).unwrap();
            let mut state = model.init_state();
            for _ in 0..200_000 {
                state = append(&model, &state, "x");
            }
            assert_eq!(state.len, 200_000);
            assert_eq!(state, KvState::whole(Arc::from("x".repeat(200_000))));
            drop(state);
        });
        worker.unwrap().join().expect("no stack overflow");
    }
}
