//! Seed ranges (`--seeds A..B`) and shards (`--shard I/N`): which seeds one campaign process
//! runs. Shards are contiguous, disjoint and together cover the range exactly once, so a CI
//! matrix or a Kubernetes Indexed Job can spread one campaign over many machines.

use std::fmt;
use std::str::FromStr;

/// A half-open range of seeds `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    pub end: u64,
}

impl SeedRange {
    pub fn new(start: u64, end: u64) -> SeedRange {
        assert!(start <= end, "a seed range never runs backwards");
        SeedRange { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn contains(&self, seed: u64) -> bool {
        (self.start..self.end).contains(&seed)
    }

    pub fn iter(&self) -> std::ops::Range<u64> {
        self.start..self.end
    }
}

/// Seeds stay below 2^53 so that every JSON reader keeps them exact (as `minos run` does).
pub const SEED_MAX: u64 = (1 << 53) - 1;

/// Parses `A..B` (B excluded, as in Rust), `A..=B` (B included) or a single seed `A`.
impl FromStr for SeedRange {
    type Err = String;
    fn from_str(text: &str) -> Result<SeedRange, String> {
        let text = text.trim();
        let number = |part: &str| -> Result<u64, String> {
            let seed: u64 = part.trim().parse().map_err(|_| {
                format!("invalid seed range {text:?}; expected A..B (B excluded), A..=B or A")
            })?;
            if seed > SEED_MAX {
                return Err(format!("seed {seed} is above the largest seed {SEED_MAX}"));
            }
            Ok(seed)
        };
        let (start, end) = if let Some((a, b)) = text.split_once("..=") {
            (
                number(a)?,
                number(b)?.checked_add(1).expect("below SEED_MAX"),
            )
        } else if let Some((a, b)) = text.split_once("..") {
            (number(a)?, number(b)?)
        } else {
            let seed = number(text)?;
            (seed, seed + 1)
        };
        if start >= end {
            return Err(format!("seed range {text:?} is empty"));
        }
        Ok(SeedRange::new(start, end))
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// The `index`-th (1-based) of `count` slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The contiguous slice of `range` this shard runs: the first `len % count` shards take
    /// one seed more than the others. Slices are disjoint and cover `range` exactly.
    pub fn slice(&self, range: SeedRange) -> SeedRange {
        assert!(1 <= self.index && self.index <= self.count);
        let base = range.len() / self.count;
        let extra = range.len() % self.count;
        let before = self.index - 1;
        let start = range.start + before * base + before.min(extra);
        let len = base + u64::from(before < extra);
        SeedRange::new(start, start + len)
    }
}

/// Parses `I/N` with 1 <= I <= N.
impl FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard {text:?}; expected I/N with 1 <= I <= N, e.g. 2/8");
        let (index, count) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = index.trim().parse().map_err(|_| bad())?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_three_forms() {
        assert_eq!("1..5".parse::<SeedRange>().unwrap(), SeedRange::new(1, 5));
        assert_eq!("1..=5".parse::<SeedRange>().unwrap(), SeedRange::new(1, 6));
        assert_eq!("7".parse::<SeedRange>().unwrap(), SeedRange::new(7, 8));
        assert!("5..5".parse::<SeedRange>().is_err());
        assert!("5..2".parse::<SeedRange>().is_err());
        assert!("a..b".parse::<SeedRange>().is_err());
        assert!(format!("0..{}", SEED_MAX + 2).parse::<SeedRange>().is_err());
    }

    #[test]
    fn shards_parse_and_reject_out_of_range() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn shards_cover_every_seed_exactly_once() {
        for len in [0u64, 1, 2, 7, 10, 100, 101] {
            for count in 1..=12u64 {
                let range = SeedRange::new(1000, 1000 + len);
                let mut seen = Vec::new();
                for index in 1..=count {
                    let slice = Shard { index, count }.slice(range);
                    assert!(slice.len() <= len / count + 1);
                    seen.extend(slice.iter());
                }
                assert_eq!(
                    seen,
                    range.iter().collect::<Vec<_>>(),
                    "len {len} count {count}"
                );
            }
        }
    }
}
