//! Memo of explored search configurations: (set of linearized ops, model state id).
//! Bitsets live in one arena (every entry of a partition has the same width), indexed by an
//! open-addressing table keyed by an incremental (Zobrist) hash, so an entry costs
//! `8 * words + 16` bytes plus table slack, and its size is known exactly.

pub(crate) struct Cache {
    words: usize,
    arena: Vec<u64>,
    states: Vec<u32>,
    hashes: Vec<u64>,
    /// Entry number + 1 per slot; 0 = empty.
    table: Vec<u32>,
    mask: usize,
}

impl Cache {
    pub(crate) fn new(words: usize) -> Cache {
        let slots = 1024;
        Cache {
            words,
            arena: Vec::new(),
            states: Vec::new(),
            hashes: Vec::new(),
            table: vec![0; slots],
            mask: slots - 1,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Bytes held, counted from capacities.
    pub(crate) fn bytes(&self) -> u64 {
        (self.arena.capacity() * 8
            + self.states.capacity() * 4
            + self.hashes.capacity() * 8
            + self.table.len() * 4) as u64
    }

    #[inline]
    fn slot_of(&self, hash: u64) -> usize {
        ((hash ^ (hash >> 29)) as usize) & self.mask
    }

    /// Records (bits, state); false if it was already there.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, state: u32, bits: &[u64]) -> bool {
        debug_assert_eq!(bits.len(), self.words);
        let mut slot = self.slot_of(hash);
        loop {
            let occupant = self.table[slot];
            if occupant == 0 {
                break;
            }
            let entry = (occupant - 1) as usize;
            if self.hashes[entry] == hash
                && self.states[entry] == state
                && self.arena[entry * self.words..(entry + 1) * self.words] == *bits
            {
                return false;
            }
            slot = (slot + 1) & self.mask;
        }
        let entry = self.states.len();
        assert!(
            entry < u32::MAX as usize - 1,
            "cache entry count exceeds u32"
        );
        self.states.push(state);
        self.hashes.push(hash);
        self.arena.extend_from_slice(bits);
        self.table[slot] = entry as u32 + 1;
        if self.states.len() * 2 > self.table.len() {
            self.grow();
        }
        true
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

#[cfg(test)]
mod tests {
    use super::Cache;

    #[test]
    fn insert_reports_duplicates_exactly() {
        let mut cache = Cache::new(2);
        for value in 0..5000u64 {
            // Colliding hashes on purpose: equality must fall back to the bits and state.
            assert!(cache.insert(value % 7, (value % 3) as u32, &[value, !value]));
        }
        for value in 0..5000u64 {
            assert!(!cache.insert(value % 7, (value % 3) as u32, &[value, !value]));
            assert!(cache.insert(value % 7, 3, &[value, !value]));
        }
        assert_eq!(cache.len(), 10000);
    }
}
