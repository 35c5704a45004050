//! Registers: `register` (read/write) and `cas-register` (read/write/cas).

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
}
