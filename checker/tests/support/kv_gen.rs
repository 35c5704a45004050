//! Deterministic generator of Porcupine-style kv histories (get/put/append on string keys),
//! written in Porcupine's kv log format (one EDN map per line) so that Minos and Porcupine can
//! check the same files. `clients` processes each run one op at a time against a sequential
//! store; every op takes effect at one moment between its invoke and its completion, so a
//! generated history is linearizable. Values are distinct tokens `x P N y` (process, op number),
//! as in Porcupine's own test data. The invalid twin of a history plants one stale read: a get
//! returns the value its key had just before a write that completed before the get was invoked.
//! Tokens start with `x ` and end with ` y` and contain neither letter otherwise, so a string is
//! one sequence of tokens: the stale value cannot reappear once that write is in (see `plant`).

#![allow(dead_code)]

/// One generated workload.
#[derive(Clone, Copy, Debug)]
pub struct KvSpec {
    pub name: &'static str,
    pub clients: u64,
    pub ops: usize,
    pub keys: u64,
    /// Plant one stale read (the invalid twin).
    pub bad: bool,
    pub seed: u64,
}

/// The workloads of issue 15 (Porcupine side by side), both verdicts where the issue has them.
pub const SCALE_SPECS: &[KvSpec] = &[
    spec("kv-c10-ok", 10, 340, 10, false),
    spec("kv-c10-bad", 10, 340, 10, true),
    spec("kv-c50-ok", 50, 1_700, 10, false),
    spec("kv-c50-bad", 50, 1_700, 10, true),
    spec("c10-20k-ok", 10, 20_000, 10, false),
    spec("c10-20k-bad", 10, 20_000, 10, true),
    spec("c20-20k-ok", 20, 20_000, 10, false),
    spec("c20-20k-bad", 20, 20_000, 10, true),
    spec("c20-100k-ok", 20, 100_000, 10, false),
    spec("c20-100k-bad", 20, 100_000, 10, true),
    spec("c50-20k-bad", 50, 20_000, 10, true),
    spec("k1-c10-1k-ok", 10, 1_000, 1, false),
    spec("k1-c10-1k-bad", 10, 1_000, 1, true),
    spec("k1-c10-5k-ok", 10, 5_000, 1, false),
    spec("k1-c10-5k-bad", 10, 5_000, 1, true),
    spec("k1-c20-1k-ok", 20, 1_000, 1, false),
    spec("k1-c20-1k-bad", 20, 1_000, 1, true),
    spec("k1-c50-1k-ok", 50, 1_000, 1, false),
    spec("k1-c50-1k-bad", 50, 1_000, 1, true),
    spec("k1-c100-1k-ok", 100, 1_000, 1, false),
    spec("k1-c100-1k-bad", 100, 1_000, 1, true),
    spec("c100-20k-ok", 100, 20_000, 10, false),
    spec("c100-20k-bad", 100, 20_000, 10, true),
];

const fn spec(name: &'static str, clients: u64, ops: usize, keys: u64, bad: bool) -> KvSpec {
    KvSpec {
        name,
        clients,
        ops,
        keys,
        bad,
        // The valid and invalid twins share a seed: the invalid one differs by one read.
        seed: 0x6b76_0000 ^ (clients << 32) ^ ops as u64 ^ (keys << 48),
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum F {
    Get,
    Put,
    Append,
}

struct Op {
    process: u64,
    f: F,
    key: u64,
    /// Put/append argument, or the value a get returned.
    value: String,
    /// The key's value just before this op took effect (for planting stale reads).
    before: String,
    /// Order of the op's effect among all effects.
    applied_at: usize,
    /// For a write: the write to the same key whose effect came just before this one's.
    previous_write: Option<usize>,
}

enum Line {
    Invoke(usize),
    Ok(usize),
}

/// The history of `spec` in Porcupine's kv format.
pub fn generate(spec: &KvSpec) -> String {
    assert!(spec.clients > 0 && spec.keys > 0);
    let mut rng = spec.seed;
    let mut next = move |bound: u64| splitmix64(&mut rng) % bound;
    let mut store = vec![String::new(); spec.keys as usize];
    let mut ops: Vec<Op> = Vec::with_capacity(spec.ops);
    let mut lines: Vec<Line> = Vec::with_capacity(spec.ops * 2);
    // Per client: (op, applied).
    let mut pending: Vec<Option<(usize, bool)>> = vec![None; spec.clients as usize];
    let mut op_numbers = vec![0u64; spec.clients as usize];
    let mut effects = 0usize;
    // Per key: the write whose effect came last so far.
    let mut last_write: Vec<Option<usize>> = vec![None; spec.keys as usize];
    while ops.len() < spec.ops || pending.iter().any(Option::is_some) {
        let client = next(spec.clients) as usize;
        match pending[client] {
            None if ops.len() < spec.ops => {
                let key = next(spec.keys);
                let f = match next(100) {
                    0..=44 => F::Get,
                    45..=49 => F::Put,
                    _ => F::Append,
                };
                let value = match f {
                    F::Get => String::new(),
                    _ => format!("x {client} {} y", op_numbers[client]),
                };
                op_numbers[client] += 1;
                ops.push(Op {
                    process: client as u64,
                    f,
                    key,
                    value,
                    before: String::new(),
                    applied_at: 0,
                    previous_write: None,
                });
                lines.push(Line::Invoke(ops.len() - 1));
                pending[client] = Some((ops.len() - 1, false));
            }
            None => {}
            Some((index, false)) => {
                let key = ops[index].key as usize;
                if ops[index].f != F::Get {
                    ops[index].previous_write = last_write[key].replace(index);
                }
                let op = &mut ops[index];
                let cell = &mut store[key];
                op.before = cell.clone();
                op.applied_at = effects;
                effects += 1;
                match op.f {
                    F::Get => op.value = cell.clone(),
                    F::Put => *cell = op.value.clone(),
                    F::Append => cell.push_str(&op.value),
                }
                pending[client] = Some((index, true));
            }
            Some((index, true)) => {
                lines.push(Line::Ok(index));
                pending[client] = None;
            }
        }
    }
    if spec.bad {
        plant(spec, &mut ops, &lines);
    }
    let mut text = String::with_capacity(lines.len() * 64);
    for line in &lines {
        let (index, kind) = match *line {
            Line::Invoke(index) => (index, "invoke"),
            Line::Ok(index) => (index, "ok"),
        };
        let op = &ops[index];
        let f = match op.f {
            F::Get => "get",
            F::Put => "put",
            F::Append => "append",
        };
        let value = if op.f == F::Get && kind == "invoke" {
            "nil".to_string()
        } else {
            format!("{:?}", op.value)
        };
        text.push_str(&format!(
            "{{:process {}, :type :{kind}, :f :{f}, :key \"{}\", :value {value}}}\n",
            op.process, op.key
        ));
    }
    text
}

/// Makes one get, past the middle of the history, return the value its key had just before
/// a write W to that key that completed before the get was invoked: of the writes whose
/// previous write X (the one whose effect came just before W's) completed before W was
/// invoked, the one applied last. Then every linearization orders X, W, the get; the stale value ends with X's token
/// (or is empty, when W was the key's first write), and after W the value always ends with the
/// token of a later write, tokens being unique: no linearization lets the get see it. Without
/// the condition on X, a put X concurrent with W could be ordered after W, and the "stale" value
/// would be a legal read.
fn plant(spec: &KvSpec, ops: &mut [Op], lines: &[Line]) {
    // Per op: the positions of its invoke and of its completion among the lines.
    let mut invoked_at = vec![usize::MAX; ops.len()];
    let mut completed_at = vec![usize::MAX; ops.len()];
    for (position, line) in lines.iter().enumerate() {
        match *line {
            Line::Invoke(index) => invoked_at[index] = position,
            Line::Ok(index) => completed_at[index] = position,
        }
    }
    let ordered_after_previous = |write: usize| {
        ops[write]
            .previous_write
            .is_none_or(|previous| completed_at[previous] < invoked_at[write])
    };
    // Per key: of the writes completed so far that are ordered after their previous write,
    // the one applied last.
    let mut last_completed_write: Vec<Option<usize>> = vec![None; spec.keys as usize];
    let mut seen_ops = 0usize;
    for line in lines {
        match *line {
            Line::Ok(index) => {
                if ops[index].f != F::Get && ordered_after_previous(index) {
                    let key = ops[index].key as usize;
                    // Keep the write applied last among those completed.
                    let later = last_completed_write[key]
                        .is_none_or(|other| ops[other].applied_at < ops[index].applied_at);
                    if later {
                        last_completed_write[key] = Some(index);
                    }
                }
            }
            Line::Invoke(index) => {
                seen_ops += 1;
                if seen_ops < ops.len() / 2 || ops[index].f != F::Get {
                    continue;
                }
                let Some(write) = last_completed_write[ops[index].key as usize] else {
                    continue;
                };
                let stale = ops[write].before.clone();
                if stale != ops[index].value {
                    ops[index].value = stale;
                    return;
                }
            }
        }
    }
    panic!("no get to plant a stale read in {}", spec.name);
}
