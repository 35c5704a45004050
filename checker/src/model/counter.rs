//! The counter of our store: read, add (an ok add may report `[delta, total]`), and write/cas
//! on the same keys so that every `minos run` workload is checkable with one model.

use serde_json::Value;

use super::subset_sums::SubsetSums;
use super::{expect_int, known_output, unknown_f, Model};
use crate::history::Operation;

pub struct Counter {
    init: i64,
}

#[derive(Clone)]
pub enum CounterOp {
    Read(Option<i64>),
    /// `total`: the value after the add, when the store reported it.
    Add {
        delta: i64,
        total: Option<i64>,
    },
    Write(i64),
    Cas(i64, i64),
}

impl Counter {
    /// Counters start at 0; `--init null` (absent) is 0 too.
    pub fn new(init: Option<&Value>) -> Result<Counter, String> {
        let init = match init {
            None | Some(Value::Null) => 0,
            Some(value) => expect_int(value, "counter --init")?,
        };
        Ok(Counter { init })
    }
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn init_state(&self) -> i64 {
        self.init
    }

    fn compile(&self, op: &Operation) -> Result<CounterOp, String> {
        match op.f.as_str() {
            "read" => Ok(CounterOp::Read(
                known_output(op)
                    .map(|value| expect_int(value, "counter read result"))
                    .transpose()?,
            )),
            "add" => {
                let delta = expect_int(&op.invoke_value, "add delta")?;
                let total = match known_output(op) {
                    Some(Value::Array(pair)) => match pair.as_slice() {
                        [reported_delta, total] => {
                            let reported_delta = expect_int(reported_delta, "add result delta")?;
                            if reported_delta != delta {
                                return Err(format!("add result [{reported_delta}, ..] does not repeat the invoked delta {delta}"));
                            }
                            Some(expect_int(total, "add result total")?)
                        }
                        _ => {
                            return Err(format!(
                                "add result must be the delta or [delta, total], found {:?}",
                                pair
                            ))
                        }
                    },
                    Some(Value::Null) | None => None,
                    Some(value) => {
                        let reported_delta = expect_int(value, "add result")?;
                        if reported_delta != delta {
                            return Err(format!("add result {reported_delta} does not repeat the invoked delta {delta}"));
                        }
                        None
                    }
                };
                Ok(CounterOp::Add { delta, total })
            }
            "write" => Ok(CounterOp::Write(expect_int(
                &op.invoke_value,
                "write value",
            )?)),
            "cas" => match op.invoke_value.as_array().map(Vec::as_slice) {
                Some([old, new]) => Ok(CounterOp::Cas(
                    expect_int(old, "cas old")?,
                    expect_int(new, "cas new")?,
                )),
                _ => Err(format!(
                    "cas value must be [old, new], found {}",
                    op.invoke_value
                )),
            },
            other => Err(unknown_f("counter", other, "read, add, write, cas")),
        }
    }

    #[inline]
    fn step(&self, state: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Read(None) => Some(*state),
            CounterOp::Read(Some(value)) => (value == *state).then_some(*state),
            CounterOp::Add { delta, total } => {
                let after = state.checked_add(delta)?;
                match total {
                    Some(total) if total != after => None,
                    _ => Some(after),
                }
            }
            CounterOp::Write(value) => Some(value),
            CounterOp::Cas(old, new) => (old == *state).then_some(new),
        }
    }

    fn why_illegal(&self, state: &i64, op: &CounterOp) -> String {
        match *op {
            CounterOp::Read(Some(value)) => {
                format!("read returned {value} but the counter is {state}")
            }
            CounterOp::Add { delta, total } => match (state.checked_add(delta), total) {
                (None, _) => format!("add {delta} to {state} overflows"),
                (Some(after), Some(total)) => {
                    format!("add {delta} reported total {total} but the counter goes from {state} to {after}")
                }
                _ => "always legal".to_string(),
            },
            CounterOp::Cas(old, new) => {
                format!("cas {old} -> {new} needs the counter to be {old}, but it is {state}")
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &i64) -> Value {
        Value::from(*state)
    }

    fn changes_state(&self, op: &CounterOp) -> bool {
        !matches!(op, CounterOp::Read(_) | CounterOp::Add { delta: 0, .. })
    }

    fn constrains(&self, op: &CounterOp) -> bool {
        !matches!(
            op,
            CounterOp::Read(None) | CounterOp::Write(_) | CounterOp::Add { total: None, .. }
        )
    }

    /// Adds without a reported total commute with each other, and a write overwrites them, as
    /// long as no sum overflows: true when no order of the object's ops can overflow (every
    /// value is a start value, or one a write or cas sets, plus some of the deltas).
    fn defers_in_doubt(&self, object_ops: &[&CounterOp]) -> bool {
        let mut largest_start = i128::from(self.init).abs();
        let mut deltas = 0i128;
        for op in object_ops {
            match **op {
                CounterOp::Add { delta, .. } => deltas += i128::from(delta).abs(),
                CounterOp::Write(value) | CounterOp::Cas(_, value) => {
                    largest_start = largest_start.max(i128::from(value).abs())
                }
                CounterOp::Read(_) => {}
            }
        }
        // At most 2^32 ops of at most 2^63 each: the i128 sum cannot overflow.
        largest_start + deltas <= i128::from(i64::MAX)
    }

    fn deferrable(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Add { total: None, delta } if *delta != 0)
    }

    fn observes_state(&self, op: &CounterOp) -> bool {
        matches!(
            op,
            CounterOp::Read(Some(_)) | CounterOp::Add { total: Some(_), .. } | CounterOp::Cas(..)
        )
    }

    /// Some target needs the counter at a value v (a read of v, a cas from v, an add that
    /// reported v + delta): some of the deferred adds must sum to v minus the state.
    fn deferred_may_enable(
        &self,
        state: &i64,
        ops: &[CounterOp],
        deferred: &[u32],
        targets: &[u32],
    ) -> bool {
        let mut sums = SubsetSums::new();
        for &op in deferred {
            if let CounterOp::Add { delta, .. } = ops[op as usize] {
                sums.add(i128::from(delta));
            }
        }
        targets
            .iter()
            .any(|&target| match needed_value(&ops[target as usize]) {
                Some(needed) => sums.may_hit(needed - i128::from(*state)),
                // Not an op that observes the state: no claim about it.
                None => true,
            })
    }

    /// The ops linearized before an op o are among those called before o returned; until a
    /// write or cas is called, they are adds (and reads), so the value o sees is the state
    /// plus some of their deltas. A read or reported total that no such sum gives can never
    /// be linearized.
    fn pending_unreachable(
        &self,
        state: &i64,
        ops: &[CounterOp],
        pending: impl Iterator<Item = (u32, bool)>,
    ) -> bool {
        first_out_of_reach(*state, ops, pending).is_some()
    }

    /// As `pending_unreachable`, of the whole object from the start.
    fn never_legal(
        &self,
        state: &i64,
        ops: &[CounterOp],
        events: &[(u32, bool)],
    ) -> Option<(u32, String)> {
        let (op, needed) = first_out_of_reach(*state, ops, events.iter().copied())?;
        Some((
            op,
            format!(
                "it needs the counter at {needed}, but no sum of the adds called before it completed brings it there from {state}, and no write or cas was called before it"
            ),
        ))
    }
}

/// The first op whose return `events` lists that no sum of the adds called before it brings
/// from `state` to the value it needs, while no write or cas is called: with that value.
fn first_out_of_reach(
    state: i64,
    ops: &[CounterOp],
    events: impl Iterator<Item = (u32, bool)>,
) -> Option<(u32, i128)> {
    let mut sums = SubsetSums::new();
    for (number, is_call) in events {
        let op = &ops[number as usize];
        match (op, is_call) {
            (CounterOp::Write(_) | CounterOp::Cas(..), true) => return None,
            (CounterOp::Add { delta, .. }, true) => sums.add(i128::from(*delta)),
            (_, true) => {}
            (_, false) => {
                if let Some(needed) = needed_value(op) {
                    if !sums.may_hit(needed - i128::from(state)) {
                        return Some((number, needed));
                    }
                }
            }
        }
    }
    None
}

/// The value the counter must hold for `op` to be legal, for ops that observe it.
fn needed_value(op: &CounterOp) -> Option<i128> {
    match *op {
        CounterOp::Read(Some(value)) | CounterOp::Cas(value, _) => Some(i128::from(value)),
        CounterOp::Add {
            delta,
            total: Some(total),
        } => Some(i128::from(total) - i128::from(delta)),
        _ => None,
    }
}
