//! Fast path of the EDN reader: the op maps Jepsen, Knossos and Porcupine write (keyword keys;
//! values that are nil, booleans, decimal integers, strings without escapes, keywords and
//! vectors of these) read straight from the bytes, without building a `clojure_reader` tree
//! and converting it. Anything else (escapes, floats, symbols, chars, tags, comments, nested
//! maps, duplicate keys, a map that is not a valid op) makes it answer `None`, and the reader
//! parses that op with `clojure_reader` as before, so errors and their lines stay exactly those
//! of the general parser. For every map it accepts it must produce the record the general
//! path produces; the tests below compare the two on generated and mutated maps.

use serde_json::Value;

use super::{Names, Process, RawRecord, RecordType};

/// A value as read by the fast path.
enum Fv<'t> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(&'t str),
    Key(&'t str),
    Vector(Vec<Fv<'t>>),
}

impl Fv<'_> {
    fn to_json(&self) -> Value {
        match self {
            Fv::Nil => Value::Null,
            Fv::Bool(flag) => Value::Bool(*flag),
            Fv::Int(number) => Value::from(*number),
            Fv::Str(text) | Fv::Key(text) => Value::String((*text).to_string()),
            Fv::Vector(items) => Value::Array(items.iter().map(Fv::to_json).collect()),
        }
    }
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
    /// Vectors open around the value being read.
    depth: usize,
}

/// Deepest nesting of vectors the fast path reads inside an op map; deeper ones go to the
/// general parser, which the reader's nesting check guards (op maps of real histories nest
/// two or three levels).
const MAX_FAST_DEPTH: usize = 16;

/// Bytes that may end a token here: ASCII whitespace, a comma, or a closing bracket the
/// fast path understands. Any other boundary (`"`, `;`, `(`, non-ASCII ...) means fall back.
fn ends_token(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']')
}

/// Bytes the fast path accepts in a keyword's name (after the colon).
const KEYWORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let others = b"-_.?!*+/<>=&%$";
    let mut index = 0;
    while index < others.len() {
        table[others[index] as usize] = true;
        index += 1;
    }
    table
};

fn keyword_byte(byte: u8) -> bool {
    KEYWORD_BYTES[usize::from(byte)]
}

impl<'t> Reader<'t> {
    fn blank(&mut self) {
        while let Some(&byte) = self.bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b',') {
                return;
            }
            self.at += 1;
        }
    }

    /// A token (keyword, integer, nil, true, false) ending at a byte `ends_token` accepts.
    fn token(&mut self) -> Option<Fv<'t>> {
        let start = self.at;
        let first = *self.bytes.get(start)?;
        let mut end = start + 1;
        let value = if first == b':' {
            while self.bytes.get(end).is_some_and(|&byte| keyword_byte(byte)) {
                end += 1;
            }
            if end == start + 1 {
                return None;
            }
            Fv::Key(&self.text[start + 1..end])
        } else if first == b'-' || first.is_ascii_digit() {
            while self.bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            let digits = &self.text[start + usize::from(first == b'-')..end];
            if digits.is_empty() {
                return None;
            }
            let magnitude: u64 = digits.parse().ok()?;
            if first == b'-' {
                if magnitude == i64::MAX as u64 + 1 {
                    Fv::Int(i64::MIN)
                } else {
                    Fv::Int(-i64::try_from(magnitude).ok()?)
                }
            } else {
                Fv::Int(i64::try_from(magnitude).ok()?)
            }
        } else if first.is_ascii_alphabetic() {
            while self.bytes.get(end).is_some_and(u8::is_ascii_alphabetic) {
                end += 1;
            }
            match &self.text[start..end] {
                "nil" => Fv::Nil,
                "true" => Fv::Bool(true),
                "false" => Fv::Bool(false),
                _ => return None,
            }
        } else {
            return None;
        };
        if !ends_token(*self.bytes.get(end)?) {
            return None;
        }
        self.at = end;
        Some(value)
    }

    fn value(&mut self) -> Option<Fv<'t>> {
        match *self.bytes.get(self.at)? {
            b'"' => {
                // Both searches run on memchr: values are most of a history's bytes.
                let start = self.at + 1;
                let length = self.text[start..].find('"')?;
                let text = &self.text[start..start + length];
                if text.as_bytes().contains(&b'\\') {
                    return None;
                }
                self.at = start + length + 1;
                Some(Fv::Str(text))
            }
            b'[' => {
                if self.depth == MAX_FAST_DEPTH {
                    return None;
                }
                self.depth += 1;
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.blank();
                    if *self.bytes.get(self.at)? == b']' {
                        self.at += 1;
                        self.depth -= 1;
                        return Some(Fv::Vector(items));
                    }
                    items.push(self.value()?);
                }
            }
            _ => self.token(),
        }
    }
}

/// Reads the op map at the start of `text` (which starts with `{`): the record and the bytes it
/// took, or `None` when the general parser must read it. `position` is the record's number in
/// the file (its index when the map has none).
pub(crate) fn read_op(
    text: &str,
    line: usize,
    position: u64,
    names: &mut Names,
) -> Option<(RawRecord, usize)> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    if reader.bytes.first() != Some(&b'{') {
        return None;
    }
    reader.at = 1;
    let mut process = None;
    let mut kind = None;
    let mut f = None;
    let mut key = None;
    let mut index = None;
    let mut value = None;
    let mut others: Vec<&str> = Vec::new();
    loop {
        reader.blank();
        if *reader.bytes.get(reader.at)? == b'}' {
            reader.at += 1;
            break;
        }
        let Fv::Key(name) = reader.token()? else {
            return None;
        };
        reader.blank();
        if *reader.bytes.get(reader.at)? == b'}' {
            return None;
        }
        let item = reader.value()?;
        // By length and first byte first: every op map has these keys, and comparing each
        // name with every key in turn was a tenth of reading a history.
        let slot = match (name.len(), name.as_bytes()[0]) {
            (7, b'p') if name == "process" => &mut process,
            (4, b't') if name == "type" => &mut kind,
            (1, b'f') => &mut f,
            (3, b'k') if name == "key" => &mut key,
            (5, b'i') if name == "index" => &mut index,
            (5, b'v') if name == "value" => &mut value,
            _ => {
                let other = name;
                if others.contains(&other) {
                    return None;
                }
                others.push(other);
                continue;
            }
        };
        if slot.replace(item).is_some() {
            return None;
        }
    }
    let process = match process? {
        Fv::Int(number) if number >= 0 => Process::Client(number as u64),
        Fv::Key("nemesis") => Process::Nemesis,
        _ => return None,
    };
    let kind = match kind? {
        Fv::Key(name) => match (name.len(), name.as_bytes()[0]) {
            (6, b'i') if name == "invoke" => RecordType::Invoke,
            (2, b'o') if name == "ok" => RecordType::Ok,
            (4, b'f') if name == "fail" => RecordType::Fail,
            (4, b'i') if name == "info" => RecordType::Info,
            _ => return None,
        },
        _ => return None,
    };
    let f = match f {
        Some(Fv::Key(name) | Fv::Str(name)) => names.get(name),
        None if process == Process::Nemesis => names.get(""),
        _ => return None,
    };
    let key = match key {
        None | Some(Fv::Nil) => None,
        Some(Fv::Str(name) | Fv::Key(name)) => Some(names.get(name)),
        _ => return None,
    };
    let index = match index {
        Some(Fv::Int(number)) if number >= 0 => number as u64,
        _ => position,
    };
    let value = value.unwrap_or(Fv::Nil);
    let unknown_output = kind == RecordType::Ok && f == "read" && matches!(value, Fv::Nil);
    Some((
        RawRecord {
            line,
            index,
            process,
            process_name: None,
            kind,
            f,
            key,
            value: value.to_json(),
            unknown_output,
        },
        reader.at,
    ))
}

#[cfg(test)]
mod tests {
    use super::read_op;
    use crate::history::edn::read_general;
    use crate::history::Names;

    /// Every map the fast path accepts reads as the general parser reads it.
    fn agree(text: &str) -> bool {
        let Some((fast, used)) = read_op(text, 1, 7, &mut Names::default()) else {
            return false;
        };
        let (general, rest) = read_general(text, 1, 7, &mut Names::default())
            .unwrap_or_else(|problem| panic!("fast path accepted {text:?}, general: {problem}"));
        assert_eq!(fast, general, "{text:?}");
        assert_eq!(used, text.len() - rest.len(), "{text:?}");
        true
    }

    #[test]
    fn fast_path_reads_what_the_general_parser_reads() {
        let accepted = [
            "{:process 0, :type :invoke, :f :get, :key \"3\", :value nil}",
            "{:process 12 :type :ok :f :append :key \"k\" :value \"x 1 2 y\"}",
            "{:type :ok, :f :read, :process 1, :value nil, :index 5, :time 123}",
            "{:process :nemesis, :type :info, :value [[:n1 :n2] [:n3]]}",
            "{:process 3, :type :ok, :f :cas, :value [1 -2], :index 9223372036854775807}",
            "{:process 3, :type :fail, :f \"write\", :value true, :error [:timeout false]}\n",
            "{:process 3, :type :info, :f :txn, :value [[:r :x nil] [:w :y 4]]}",
            "{:process 0,:type :ok,:f :read,:key :k,:value -9223372036854775808}",
        ];
        for text in accepted {
            assert!(agree(text), "fast path should accept {text:?}");
        }
        let refused = [
            "{:process 0, :type :ok, :f :read, :value 1.5}",
            "{:process 0, :type :ok, :f :read, :value \"a\\\"b\"}",
            "{:process 0, :type :ok, :f :read, :value 1, :value 2}",
            "{:process 0, :type :ok, :f :read, :value {:a 1}}",
            "{:process 0, :type :ok, :f read, :value 1}",
            "{:process -1, :type :ok, :f :read, :value 1}",
            "{:process 0, :type :okay, :f :read}",
            "{:process 0, :type :ok, :f :read ; comment\n}",
            "{:process 0, :type :ok, :f :read, :value 99999999999999999999}",
            "{:process 0, :type :ok, :f :read, :value #{1}}",
            "{:process 0, :type :ok, :f :read, :value 007x}",
            "{:process 0, :type :ok, :f :read, :key 5}",
            "{:process 0 :type}",
            "{:process 0, :type :ok, :f :read",
        ];
        for text in refused {
            assert!(
                read_op(text, 1, 7, &mut Names::default()).is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn mutated_maps_agree_or_fall_back() {
        let base = "{:process 4, :type :ok, :f :append, :key \"12\", :value [\"x 4 7 y\" -3 nil true], :index 40}";
        let alphabet = " ,:{}[]\"\\;-0123456789abfiklnoprstuvxy#.\n\ré€".as_bytes();
        let mut seed = 0x5eed_u64;
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut bytes = base.as_bytes().to_vec();
            for _ in 0..1 + crate::fxhash::splitmix64(&mut seed) % 3 {
                let at = (crate::fxhash::splitmix64(&mut seed) as usize) % bytes.len();
                let byte =
                    alphabet[(crate::fxhash::splitmix64(&mut seed) as usize) % alphabet.len()];
                match crate::fxhash::splitmix64(&mut seed) % 3 {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if agree(&text) {
                accepted += 1;
            }
        }
        assert!(accepted > 1_000, "the mutants exercise the fast path");
    }
}
