//! Memo of explored search configurations: (set of linearized ops, model state id).
//!
//! A linearized set is stored compactly: the number of leading all-ones words (ops before the
//! search's frontier are almost all linearized), then the words after them up to the last
//! non-zero one. Sets live in one arena, indexed by an open-addressing table keyed by an
//! incremental (Zobrist) hash, so an entry costs a few words and its size is known exactly.

pub(crate) struct Cache {
    arena: Vec<u64>,
    /// Start of each entry's words in `arena`, plus one final end offset.
    offsets: Vec<u32>,
    full_words: Vec<u32>,
    states: Vec<u32>,
    hashes: Vec<u64>,
    /// A word the search keeps per entry (which independent part made it fail); empty
    /// unless `keep_tags` was called.
    tags: Vec<u32>,
    tagged: bool,
    /// Entry number + 1 per slot; 0 = empty.
    table: Vec<u32>,
    mask: usize,
}

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache::with_capacity(0)
    }

    /// A cache sized for `entries` entries of one arena word each, so that a search that
    /// needs about that many never reallocates (every linearized op adds at least one entry).
    pub(crate) fn with_capacity(entries: usize) -> Cache {
        // The table doubles as entries come: a small object's search (a few dozen entries)
        // does not zero a large one.
        let slots = (entries * 2).next_power_of_two().max(64);
        let mut offsets = Vec::with_capacity(entries + 1);
        offsets.push(0);
        Cache {
            arena: Vec::with_capacity(entries),
            offsets,
            full_words: Vec::with_capacity(entries),
            states: Vec::with_capacity(entries),
            hashes: Vec::with_capacity(entries),
            tags: Vec::new(),
            tagged: false,
            table: vec![0; slots],
            mask: slots - 1,
        }
    }

    /// Keeps a tag per entry from now on (call before the first insert).
    pub(crate) fn keep_tags(&mut self) {
        assert!(self.states.is_empty(), "tags are kept from the first entry");
        self.tagged = true;
        self.tags.reserve(self.states.capacity());
    }

    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Bytes held, counted from capacities.
    pub(crate) fn bytes(&self) -> u64 {
        (self.arena.capacity() * 8
            + self.offsets.capacity() * 4
            + self.full_words.capacity() * 4
            + self.states.capacity() * 4
            + self.hashes.capacity() * 8
            + self.tags.capacity() * 4
            + self.table.len() * 4) as u64
    }

    #[inline]
    fn slot_of(&self, hash: u64) -> usize {
        ((hash ^ (hash >> 29)) as usize) & self.mask
    }

    /// Records (set, state), the set given as `full_words` all-ones words followed by `tail`
    /// (whose last word, if any, is non-zero); false if it was already there.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, hash: u64, state: u32, full_words: u32, tail: &[u64]) -> bool {
        self.insert_entry(hash, state, full_words, tail, 0).0
    }

    /// As `insert`, with the entry's number: (true, new entry tagged `tag`) or (false, the
    /// entry already there).
    #[inline]
    pub(crate) fn insert_entry(
        &mut self,
        hash: u64,
        state: u32,
        full_words: u32,
        tail: &[u64],
        tag: u32,
    ) -> (bool, u32) {
        debug_assert!(tail.last().is_none_or(|&word| word != 0));
        let slot = match self.find(hash, state, full_words, tail) {
            Ok(entry) => return (false, entry),
            Err(free_slot) => free_slot,
        };
        let entry = self.states.len();
        assert!(
            entry < u32::MAX as usize - 1,
            "cache entry count exceeds u32"
        );
        assert!(
            self.arena.len() + tail.len() < u32::MAX as usize,
            "cache arena exceeds u32 words"
        );
        self.states.push(state);
        self.hashes.push(hash);
        if self.tagged {
            self.tags.push(tag);
        }
        self.full_words.push(full_words);
        for &word in tail {
            self.arena.push(word);
        }
        self.offsets.push(self.arena.len() as u32);
        self.table[slot] = entry as u32 + 1;
        if self.states.len() * 2 > self.table.len() {
            self.grow();
        }
        (true, entry as u32)
    }

    /// Whether (set, state) is recorded.
    pub(crate) fn contains(&self, hash: u64, state: u32, full_words: u32, tail: &[u64]) -> bool {
        self.find(hash, state, full_words, tail).is_ok()
    }

    /// The entry holding (set, state), or the free slot where it would go (linear probing).
    #[inline]
    fn find(&self, hash: u64, state: u32, full_words: u32, tail: &[u64]) -> Result<u32, usize> {
        let mut slot = self.slot_of(hash);
        loop {
            let occupant = self.table[slot];
            if occupant == 0 {
                return Err(slot);
            }
            let entry = (occupant - 1) as usize;
            if self.hashes[entry] == hash
                && self.states[entry] == state
                && self.full_words[entry] == full_words
                && self.arena[self.offsets[entry] as usize..self.offsets[entry + 1] as usize]
                    == *tail
            {
                return Ok(entry as u32);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The entry's tag (0 when tags are not kept).
    #[inline]
    pub(crate) fn tag(&self, entry: u32) -> u32 {
        if self.tagged {
            self.tags[entry as usize]
        } else {
            0
        }
    }

    #[inline]
    pub(crate) fn set_tag(&mut self, entry: u32, tag: u32) {
        assert!(self.tagged, "tags are kept");
        self.tags[entry as usize] = tag;
    }

    fn grow(&mut self) {
        let slots = self.table.len() * 2;
        self.table = vec![0; slots];
        self.mask = slots - 1;
        for (entry, &hash) in self.hashes.iter().enumerate() {
            let mut slot = ((hash ^ (hash >> 29)) as usize) & self.mask;
            while self.table[slot] != 0 {
                slot = (slot + 1) & self.mask;
            }
            self.table[slot] = entry as u32 + 1;
        }
    }
}

/// A set of op numbers as a bitset that keeps its compact form (leading all-ones words, last
/// non-zero word) up to date as bits change.
pub(crate) struct OpSet {
    words: Vec<u64>,
    /// Words before this one are all ones.
    full_words: usize,
    /// Words from this one on are all zeros.
    end_words: usize,
}

impl OpSet {
    pub(crate) fn new(op_count: usize) -> OpSet {
        OpSet {
            words: vec![0; op_count.div_ceil(64).max(1)],
            full_words: 0,
            end_words: 0,
        }
    }

    #[inline]
    pub(crate) fn insert(&mut self, op: u32) {
        let word = op as usize / 64;
        self.words[word] |= 1u64 << (op % 64);
        self.end_words = self.end_words.max(word + 1);
        while self.full_words < self.words.len() && self.words[self.full_words] == u64::MAX {
            self.full_words += 1;
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, op: u32) {
        let word = op as usize / 64;
        self.words[word] &= !(1u64 << (op % 64));
        self.full_words = self.full_words.min(word);
        while self.end_words > 0 && self.words[self.end_words - 1] == 0 {
            self.end_words -= 1;
        }
    }

    /// (leading all-ones words, the words after them up to the last non-zero one).
    #[inline]
    pub(crate) fn compact(&self) -> (u32, &[u64]) {
        let start = self.full_words.min(self.end_words);
        (start as u32, &self.words[start..self.end_words])
    }

    pub(crate) fn bytes(&self) -> usize {
        self.words.capacity() * 8 + 16
    }

    #[inline]
    pub(crate) fn contains(&self, op: u32) -> bool {
        self.words[op as usize / 64] & (1u64 << (op % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::{Cache, OpSet};

    #[test]
    fn insert_reports_duplicates_exactly() {
        let mut cache = Cache::new();
        for value in 1..5000u64 {
            // Colliding hashes on purpose: equality must fall back to the set and state.
            assert!(cache.insert(
                value % 7,
                (value % 3) as u32,
                (value % 2) as u32,
                &[value, !value]
            ));
        }
        for value in 1..5000u64 {
            assert!(!cache.insert(
                value % 7,
                (value % 3) as u32,
                (value % 2) as u32,
                &[value, !value]
            ));
            assert!(cache.insert(value % 7, 3, (value % 2) as u32, &[value, !value]));
            assert!(cache.insert(value % 7, (value % 3) as u32, 2, &[value, !value]));
        }
        assert_eq!(cache.len(), 3 * 4999);
    }

    #[test]
    fn compact_form_follows_every_change() {
        let mut set = OpSet::new(300);
        let mut reference = std::collections::BTreeSet::new();
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let op = (crate::fxhash::splitmix64(&mut seed) % 300) as u32;
            // Mostly fill from the low end, as the search does.
            let op = if seed % 3 == 0 { op } else { op / 4 };
            if reference.contains(&op) {
                reference.remove(&op);
                set.remove(op);
            } else {
                reference.insert(op);
                set.insert(op);
            }
            let (full_words, tail) = set.compact();
            let mut rebuilt = vec![u64::MAX; full_words as usize];
            rebuilt.extend_from_slice(tail);
            let mut expected = vec![0u64; 5];
            for &member in &reference {
                expected[member as usize / 64] |= 1 << (member % 64);
                assert!(set.contains(member));
            }
            while expected.last() == Some(&0) {
                expected.pop();
            }
            assert_eq!(rebuilt, expected);
        }
    }
}
