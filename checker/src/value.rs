//! `Val`: a compact, hashable value for model states and op arguments (JSON has no `Hash`).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Str(Arc<str>),
    /// Any other JSON (floats, arrays, objects), compared by its canonical text.
    Other(Arc<str>),
}

impl Val {
    pub fn from_json(value: &Value) -> Val {
        match value {
            Value::Null => Val::Null,
            Value::Bool(flag) => Val::Bool(*flag),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Val::Int(integer),
                None => Val::Other(number.to_string().into()),
            },
            Value::String(text) => Val::Str(text.as_str().into()),
            other => Val::Other(other.to_string().into()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(flag) => Value::Bool(*flag),
            Val::Int(integer) => Value::from(*integer),
            Val::Str(text) => Value::String(text.to_string()),
            Val::Other(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
            }
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => write!(formatter, "null"),
            Val::Bool(flag) => write!(formatter, "{flag}"),
            Val::Int(integer) => write!(formatter, "{integer}"),
            Val::Str(text) => write!(formatter, "{:?}", text),
            Val::Other(text) => write!(formatter, "{text}"),
        }
    }
}

impl fmt::Debug for Val {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}
