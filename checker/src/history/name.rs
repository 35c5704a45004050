//! `Name`: a short string shared by many operations (an op's f, its key, a process name).
//! A history of 100k ops names a handful of fs and keys: each op holds a pointer to one
//! shared copy instead of two heap strings of its own. The pointer is thin (an `Arc` of a
//! boxed `str`, one word), so that `Option<Name>` fields cost an op 8 bytes, not 16. `Names` hands out the shared copies
//! while a history is read.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fxhash::FxHashMap;

/// An immutable string, cheap to clone; compares, orders and hashes as its text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<Box<str>>);

impl Name {
    pub fn new(text: &str) -> Name {
        Name(Arc::new(Box::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), formatter)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name(Arc::new(Box::from(text)))
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0.to_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

/// Most distinct names `Names` keeps: past that (a history with a key per op, say) each
/// further name gets its own copy, so that the table never holds more than this.
const MAX_SHARED_NAMES: usize = 4096;
/// Longest name shared: a long text is unlikely to repeat and would only fill the table.
const MAX_SHARED_BYTES: usize = 64;

/// Slots of the cache in front of the table: a history's fs and keys nearly always hit it.
const RECENT_SLOTS: usize = 64;

/// The shared copies handed out while one history is read.
#[derive(Default)]
pub(crate) struct Names {
    /// Direct-mapped by a hash of the length and the first and last bytes (cheap for the
    /// short names histories use; a miss only costs a lookup in `shared`).
    recent: Vec<Option<Name>>,
    shared: FxHashMap<Name, ()>,
}

impl Names {
    pub(crate) fn get(&mut self, text: &str) -> Name {
        if self.recent.is_empty() {
            self.recent = vec![None; RECENT_SLOTS];
        }
        let bytes = text.as_bytes();
        let slot = match bytes {
            [] => 0,
            [first, .., last] => {
                (bytes.len() * 31 + usize::from(*first) * 7 + usize::from(*last)) % RECENT_SLOTS
            }
            [only] => (31 + usize::from(*only) * 8) % RECENT_SLOTS,
        };
        if let Some(name) = &self.recent[slot] {
            if name.as_bytes() == bytes {
                return name.clone();
            }
        }
        let name = match self.shared.get_key_value(text) {
            Some((name, ())) => name.clone(),
            None => {
                let name = Name::new(text);
                if text.len() <= MAX_SHARED_BYTES && self.shared.len() < MAX_SHARED_NAMES {
                    self.shared.insert(name.clone(), ());
                }
                name
            }
        };
        if text.len() <= MAX_SHARED_BYTES {
            self.recent[slot] = Some(name.clone());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_text_and_are_shared() {
        let mut names = Names::default();
        let first = names.get("append");
        let second = names.get("append");
        assert!(Arc::ptr_eq(&first.0, &second.0));
        assert_eq!(first, "append");
        assert_eq!(first.as_str(), "append");
        let (a, b) = (Name::from("a"), Name::from("b"));
        assert!(a < b, "names order as their text");
        assert_eq!(format!("{first} {first:?}"), "append \"append\"");
        let long = "k".repeat(MAX_SHARED_BYTES + 1);
        assert!(!Arc::ptr_eq(&names.get(&long).0, &names.get(&long).0));
    }
}
