//! Registers: `register` (read/write) and `cas-register` (read/write/cas).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{expect_pair, known_output, unknown_f, Model};
use crate::history::Operation;
use crate::value::Val;

pub struct Register {
    init: Val,
    allow_cas: bool,
}

#[derive(Clone)]
pub enum RegisterOp {
    /// `None`: the value read was not observed.
    Read(Option<Val>),
    Write(Val),
    Cas(Val, Val),
}

impl Register {
    /// `init` None = 0 (an absent key of our store reads as 0); JSON null = absent.
    pub fn new(init: Option<&Value>, allow_cas: bool) -> Result<Register, String> {
        let init = init.map_or(Val::Int(0), Val::from_json);
        Ok(Register { init, allow_cas })
    }

    fn name(&self) -> &'static str {
        if self.allow_cas {
            "cas-register"
        } else {
            "register"
        }
    }
}

impl Model for Register {
    type State = Val;
    type Op = RegisterOp;

    fn init_state(&self) -> Val {
        self.init.clone()
    }

    fn compile(&self, op: &Operation) -> Result<RegisterOp, String> {
        match op.f.as_str() {
            "read" => Ok(RegisterOp::Read(known_output(op).map(Val::from_json))),
            "write" => Ok(RegisterOp::Write(Val::from_json(&op.invoke_value))),
            "cas" if self.allow_cas => {
                let (old, new) = expect_pair(&op.invoke_value, "cas value")?;
                Ok(RegisterOp::Cas(old, new))
            }
            other => Err(unknown_f(
                self.name(),
                other,
                if self.allow_cas {
                    "read, write, cas"
                } else {
                    "read, write"
                },
            )),
        }
    }

    #[inline]
    fn step(&self, state: &Val, op: &RegisterOp) -> Option<Val> {
        match op {
            RegisterOp::Read(None) => Some(state.clone()),
            RegisterOp::Read(Some(value)) => (value == state).then(|| state.clone()),
            RegisterOp::Write(value) => Some(value.clone()),
            RegisterOp::Cas(old, new) => (old == state).then(|| new.clone()),
        }
    }

    fn why_illegal(&self, state: &Val, op: &RegisterOp) -> String {
        match op {
            RegisterOp::Read(Some(value)) => {
                format!("read returned {value} but the register holds {state}")
            }
            RegisterOp::Cas(old, new) => {
                format!("cas {old} -> {new} needs the register to hold {old}, but it holds {state}")
            }
            _ => "always legal".to_string(),
        }
    }

    fn state_json(&self, state: &Val) -> Value {
        state.to_json()
    }

    fn changes_state(&self, op: &RegisterOp) -> bool {
        !matches!(op, RegisterOp::Read(_))
    }

    fn constrains(&self, op: &RegisterOp) -> bool {
        !matches!(op, RegisterOp::Read(None) | RegisterOp::Write(_))
    }

    /// A write is legal in every state; moved past a write it is overwritten, and past a read
    /// whose value was not observed it commutes. So an in-doubt write may wait until just
    /// before an op that observes the register (a read of a value, a cas).
    fn defers_in_doubt(&self, _object_ops: &[&RegisterOp]) -> bool {
        true
    }

    fn deferrable(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    fn observes_state(&self, op: &RegisterOp) -> bool {
        needed_value(op).is_some()
    }

    fn deferred_overwrite(&self) -> bool {
        true
    }

    /// Judges `state` alone: with `deferred_overwrite` a block holds one write, so no more of
    /// `deferred` can follow it.
    fn deferred_may_enable(
        &self,
        state: &Val,
        ops: &[RegisterOp],
        _deferred: &[u32],
        targets: &[u32],
    ) -> bool {
        targets
            .iter()
            .any(|&target| needed_value(&ops[target as usize]).is_none_or(|needed| needed == state))
    }

    /// The ops linearized before an op o are among those called before o returned, so the
    /// value o needs is the initial one or one that a write or cas called before o's return
    /// sets. A read of a value never written, however many in-doubt ops come before it, is
    /// found here at once rather than by trying every subset of them.
    fn never_legal(
        &self,
        state: &Val,
        ops: &[RegisterOp],
        events: &[(u32, bool)],
    ) -> Option<(u32, String)> {
        let mut written = BTreeSet::new();
        for &(op, is_call) in events {
            match (&ops[op as usize], is_call) {
                (RegisterOp::Write(value) | RegisterOp::Cas(_, value), true) => {
                    written.insert(value);
                }
                (observer, false) => {
                    let Some(needed) = needed_value(observer) else {
                        continue;
                    };
                    if needed != state && !written.contains(needed) {
                        let what = match observer {
                            RegisterOp::Cas(..) => "it compares with",
                            _ => "it read",
                        };
                        return Some((
                            op,
                            format!(
                                "{what} {needed}, but no write or cas called before it completed sets {needed}, and the register starts at {state}"
                            ),
                        ));
                    }
                }
                (_, true) => {}
            }
        }
        None
    }
}

/// The value the register must hold for `op` to be legal, for ops that observe it.
fn needed_value(op: &RegisterOp) -> Option<&Val> {
    match op {
        RegisterOp::Read(Some(value)) | RegisterOp::Cas(value, _) => Some(value),
        RegisterOp::Read(None) | RegisterOp::Write(_) => None,
    }
}
