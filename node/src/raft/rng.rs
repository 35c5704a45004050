//! A tiny seeded PRNG (SplitMix64) for election timeouts: deterministic per (seed, node id),
//! no dependency, no global state.

use super::NodeId;

#[derive(Clone, Debug)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Nodes of one run share `seed`, so the id is mixed in to keep their timeouts apart.
    pub(crate) fn for_node(seed: u64, id: NodeId) -> SplitMix64 {
        let mut rng = SplitMix64 {
            state: seed ^ id.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (the tiny modulo bias is irrelevant for timeouts).
    pub(crate) fn range_inclusive(&mut self, low: u32, high: u32) -> u32 {
        assert!(low <= high, "empty range {low}..={high}");
        let span = u64::from(high - low) + 1;
        low + (self.next_u64() % span) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_id_give_the_same_sequence_and_ids_differ() {
        let draw = |seed, id| {
            let mut rng = SplitMix64::for_node(seed, id);
            (0..32)
                .map(|_| rng.range_inclusive(15, 30))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 1), draw(7, 1));
        assert_ne!(draw(7, 1), draw(7, 2));
        assert_ne!(draw(7, 1), draw(8, 1));
        assert!(draw(7, 3).iter().all(|t| (15..=30).contains(t)));
    }
}
