//! Operation generators: which op a client issues next, on which key, with which value,
//! and how each op and its reply are written in the history (DESIGN.md §3).

use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::options::{KeyDistribution, Workload};

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Read { key: String },
    Add { key: String, delta: i64 },
    Write { key: String, value: i64 },
    Cas { key: String, old: i64, new: i64 },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key }
            | Op::Add { key, .. }
            | Op::Write { key, .. }
            | Op::Cas { key, .. } => key,
        }
    }

    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            Op::Read { .. } => "read",
            Op::Add { .. } => "add",
            Op::Write { .. } => "write",
            Op::Cas { .. } => "cas",
        }
    }

    /// The `value` of the invoke record.
    pub fn invoke_value(&self) -> Value {
        match self {
            Op::Read { .. } => Value::Null,
            Op::Add { delta, .. } => json!(delta),
            Op::Write { value, .. } => json!(value),
            Op::Cas { old, new, .. } => json!([old, new]),
        }
    }

    /// The `value` of an `ok` record, given what the store returned.
    pub fn ok_value(&self, returned: Option<i64>) -> Value {
        match (self, returned) {
            (Op::Read { .. }, Some(value)) => json!(value),
            // A read with no value is a protocol error of the store; keep it visible as null.
            (Op::Read { .. }, None) => Value::Null,
            (Op::Add { delta, .. }, Some(total)) => json!([delta, total]),
            (Op::Add { delta, .. }, None) => json!(delta),
            _ => self.invoke_value(),
        }
    }
}

/// The key names of a run: "k0".."k{N-1}".
pub fn key_name(index: usize) -> String {
    format!("k{index}")
}

/// In the mixed workload, even keys are counters and odd keys are cas-registers.
pub fn mixed_key_is_counter(key: &str) -> bool {
    key.strip_prefix('k')
        .and_then(|number| number.parse::<usize>().ok())
        .is_some_and(|number| number % 2 == 0)
}

/// Draws the ops of one client (its own seeded RNG stream).
pub struct Generator {
    workload: Workload,
    distribution: KeyDistribution,
    /// Cumulative weights of the keys (skewed) or empty (uniform).
    cumulative_weights: Vec<f64>,
    keys: usize,
}

impl Generator {
    pub fn new(workload: Workload, distribution: KeyDistribution, keys: usize) -> Generator {
        assert!(keys > 0, "keys is validated by RunOptions");
        let cumulative_weights = match distribution {
            KeyDistribution::Uniform => Vec::new(),
            KeyDistribution::Skewed => {
                let mut total = 0.0;
                (0..keys)
                    .map(|index| {
                        total += 1.0 / (index as f64 + 1.0);
                        total
                    })
                    .collect()
            }
        };
        Generator {
            workload,
            distribution,
            cumulative_weights,
            keys,
        }
    }

    fn key_index(&self, rng: &mut SmallRng) -> usize {
        match self.distribution {
            KeyDistribution::Uniform => rng.random_range(0..self.keys),
            KeyDistribution::Skewed => {
                let total = *self.cumulative_weights.last().expect("keys > 0");
                let point = rng.random_range(0.0..total);
                self.cumulative_weights
                    .iter()
                    .position(|weight| point < *weight)
                    .unwrap_or(self.keys - 1)
            }
        }
    }

    pub fn next_op(&self, rng: &mut SmallRng) -> Op {
        let key = key_name(self.key_index(rng));
        let as_counter = match self.workload {
            Workload::Counter => true,
            Workload::Mixed => mixed_key_is_counter(&key),
            Workload::Register | Workload::CasRegister => false,
        };
        if as_counter {
            return if rng.random_bool(0.5) {
                Op::Add {
                    key,
                    delta: rng.random_range(1..=5),
                }
            } else {
                Op::Read { key }
            };
        }
        let with_cas = self.workload != Workload::Register;
        match rng.random_range(0..10) {
            0..=3 => Op::Read { key },
            4..=6 if with_cas => Op::Write {
                key,
                value: rng.random_range(0..5),
            },
            _ if with_cas => Op::Cas {
                key,
                old: rng.random_range(0..5),
                new: rng.random_range(0..5),
            },
            // Registers without cas draw from a wider domain, so that reads identify writes.
            _ => Op::Write {
                key,
                value: rng.random_range(0..100),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn counter_workload_issues_adds_and_reads_only() {
        let generator = Generator::new(Workload::Counter, KeyDistribution::Uniform, 4);
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..200 {
            let op = generator.next_op(&mut rng);
            assert!(matches!(op, Op::Add { .. } | Op::Read { .. }), "{op:?}");
            assert!(["k0", "k1", "k2", "k3"].contains(&op.key()));
        }
    }

    #[test]
    fn skewed_keys_prefer_the_first_key() {
        let generator = Generator::new(Workload::Register, KeyDistribution::Skewed, 8);
        let mut rng = SmallRng::seed_from_u64(2);
        let mut counts = [0usize; 8];
        for _ in 0..4000 {
            let op = generator.next_op(&mut rng);
            counts[op.key()[1..].parse::<usize>().unwrap()] += 1;
            assert!(matches!(op, Op::Write { .. } | Op::Read { .. }));
        }
        assert!(counts[0] > 3 * counts[7], "{counts:?}");
    }

    #[test]
    fn mixed_workload_keeps_each_key_to_one_model() {
        let generator = Generator::new(Workload::Mixed, KeyDistribution::Uniform, 4);
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..400 {
            let op = generator.next_op(&mut rng);
            let counter_op = matches!(op, Op::Add { .. });
            let register_op = matches!(op, Op::Write { .. } | Op::Cas { .. });
            if counter_op {
                assert!(mixed_key_is_counter(op.key()));
            }
            if register_op {
                assert!(!mixed_key_is_counter(op.key()));
            }
        }
    }

    #[test]
    fn history_values_follow_the_contract() {
        let add = Op::Add {
            key: "k1".into(),
            delta: 5,
        };
        assert_eq!(add.invoke_value(), json!(5));
        assert_eq!(add.ok_value(Some(12)), json!([5, 12]));
        let cas = Op::Cas {
            key: "k1".into(),
            old: 1,
            new: 2,
        };
        assert_eq!(cas.invoke_value(), json!([1, 2]));
        assert_eq!(cas.ok_value(None), json!([1, 2]));
        assert_eq!(Op::Read { key: "k1".into() }.ok_value(Some(3)), json!(3));
    }
}
