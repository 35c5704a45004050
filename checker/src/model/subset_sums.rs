//! Which sums a multiset of integers can make (each element used at most once): the counter's
//! pruning asks whether pending adds can bring the value to what a read or a reported total
//! needs. Exact while the sums span a few thousand values, then bounded by their range and
//! their greatest common divisor (a superset, so a "no" is always right).

/// Widest span of sums tracked exactly, in bits of the set below.
const EXACT_WORDS: usize = 64;

/// The sums of the sub-multisets of the amounts added so far, the empty one (0) included.
pub(crate) struct SubsetSums {
    lowest: i128,
    highest: i128,
    /// The greatest common divisor of the amounts (0 for none).
    divisor: u128,
    /// Bit i: some sub-multiset sums to `lowest + i`. Meaningful while `exact`.
    bits: [u64; EXACT_WORDS],
    /// Words of `bits` that hold sums (the span's), so that a shift touches no others.
    words: usize,
    exact: bool,
}

impl SubsetSums {
    pub(crate) fn new() -> SubsetSums {
        let mut bits = [0u64; EXACT_WORDS];
        bits[0] = 1;
        SubsetSums {
            lowest: 0,
            highest: 0,
            divisor: 0,
            bits,
            words: 1,
            exact: true,
        }
    }

    /// Adds one element. A negative amount lowers the smallest sum, so every sum's bit moves
    /// up by its size; either way the new set is the old one or'ed with itself shifted.
    pub(crate) fn add(&mut self, amount: i128) {
        if amount == 0 {
            return;
        }
        if amount < 0 {
            self.lowest += amount;
        } else {
            self.highest += amount;
        }
        self.divisor = gcd(self.divisor, amount.unsigned_abs());
        if !self.exact {
            return;
        }
        let span = self.highest - self.lowest;
        if span >= (EXACT_WORDS * 64) as i128 {
            self.exact = false;
            return;
        }
        self.words = span as usize / 64 + 1;
        shift_or_up(&mut self.bits[..self.words], amount.unsigned_abs() as usize);
    }

    /// Whether some sub-multiset may sum to `need`: exactly while the span is small, else
    /// whether `need` lies in the range and is a multiple of the divisor.
    pub(crate) fn may_hit(&self, need: i128) -> bool {
        if need == 0 {
            return true;
        }
        if need < self.lowest || need > self.highest || self.divisor == 0 {
            return false;
        }
        if need.unsigned_abs() % self.divisor != 0 {
            return false;
        }
        if !self.exact {
            return true;
        }
        let bit = (need - self.lowest) as usize;
        self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// Euclid's, in 64-bit steps while both fit (amounts are 64-bit, so they nearly always do).
fn gcd(mut left: u128, mut right: u128) -> u128 {
    while right != 0 {
        if let (Ok(small_left), Ok(small_right)) = (u64::try_from(left), u64::try_from(right)) {
            let (mut a, mut b) = (small_left, small_right);
            while b != 0 {
                (a, b) = (b, a % b);
            }
            return u128::from(a);
        }
        (left, right) = (right, left % right);
    }
    left
}

/// `bits |= bits << by` over a little-endian bit vector (bits shifted past the end vanish).
/// From the top down, so every word read is still the old one.
fn shift_or_up(bits: &mut [u64], by: usize) {
    let (words, offset) = (by / 64, by % 64);
    for index in (words..bits.len()).rev() {
        let mut moved = bits[index - words] << offset;
        if offset != 0 && index > words {
            moved |= bits[index - words - 1] >> (64 - offset);
        }
        bits[index] |= moved;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every sub-multiset's sum, by enumeration.
    fn all_sums(amounts: &[i128]) -> BTreeSet<i128> {
        let mut sums = BTreeSet::from([0i128]);
        for &amount in amounts {
            let shifted: Vec<i128> = sums.iter().map(|sum| sum + amount).collect();
            sums.extend(shifted);
        }
        sums
    }

    #[test]
    fn exact_sums_match_enumeration_and_wide_ones_never_say_no_wrongly() {
        let mut seed = 0x0005_eed5_u64;
        let mut next = |bound: u64| crate::fxhash::splitmix64(&mut seed) % bound;
        for round in 0..2000 {
            let count = next(12) as usize;
            let scale = [3, 10, 200, 5000, 1 << 40][round % 5];
            let amounts: Vec<i128> = (0..count)
                .map(|_| next(2 * scale + 1) as i128 - scale as i128)
                .collect();
            let mut sums = SubsetSums::new();
            for &amount in &amounts {
                sums.add(amount);
            }
            let expected = all_sums(&amounts);
            let span = expected.last().unwrap() - expected.first().unwrap();
            let probes = expected
                .iter()
                .flat_map(|&sum| [sum - 1, sum, sum + 1])
                .chain((0..20).map(|_| next(2 * scale + 1) as i128 - scale as i128));
            for need in probes {
                let hit = sums.may_hit(need);
                if expected.contains(&need) {
                    assert!(hit, "{amounts:?}: {need} is a sum");
                } else if span < (EXACT_WORDS * 64) as i128 {
                    assert!(!hit, "{amounts:?}: {need} is not a sum");
                }
            }
        }
    }
}
