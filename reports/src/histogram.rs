//! A bounded-memory latency histogram (logarithmic buckets, ~2% relative error) used to
//! aggregate latencies over many runs without keeping every sample.

use std::collections::BTreeMap;

/// Buckets grow by this ratio; quantiles are reported at the bucket's upper bound.
const RATIO: f64 = 1.02;

#[derive(Clone, Debug, Default)]
pub struct LogHistogram {
    buckets: BTreeMap<i32, u64>,
    count: u64,
    max_ns: u64,
}

impl LogHistogram {
    pub fn record(&mut self, ns: u64) {
        let b = if ns == 0 {
            i32::MIN
        } else {
            ((ns as f64).ln() / RATIO.ln()).floor() as i32
        };
        *self.buckets.entry(b).or_default() += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Nearest-rank quantile, as the upper bound of its bucket (capped by the true max).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (&b, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                if b == i32::MIN {
                    return Some(0);
                }
                let upper = RATIO.powi(b + 1) as u64;
                return Some(upper.min(self.max_ns));
            }
        }
        Some(self.max_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_two_percent() {
        let mut h = LogHistogram::default();
        for ns in 1..=10_000u64 {
            h.record(ns * 1000);
        }
        let p50 = h.quantile(0.5).unwrap() as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.03, "{p50}");
        assert_eq!(h.quantile(1.0), Some(10_000_000));
        assert_eq!(LogHistogram::default().quantile(0.5), None);
    }
}
