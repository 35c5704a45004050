//! Numbers derived from a history: counts per f and outcome, latency quantiles and rates over
//! time buckets (bucket size adapted to the run's length), availability during each fault.

use std::collections::BTreeMap;

use crate::history::{History, Outcome};
use crate::results::Fault;

/// Bucket sizes the time axis may use, in ns: "nice" values from 1 ms to 1 h.
const NICE_BUCKETS_NS: [u64; 19] = [
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
    15_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
    600_000_000_000,
    3_600_000_000_000,
];

/// Target bucket count over a run: enough to see a fault's effect, few enough to be smooth.
const TARGET_BUCKETS: u64 = 100;

/// The smallest nice bucket giving at most [`TARGET_BUCKETS`] buckets over `duration_ns`.
pub fn bucket_ns(duration_ns: u64) -> u64 {
    let wanted = duration_ns / TARGET_BUCKETS;
    NICE_BUCKETS_NS
        .iter()
        .copied()
        .find(|&b| b >= wanted)
        .unwrap_or(*NICE_BUCKETS_NS.last().expect("non-empty"))
}

/// Count of ops per (f, outcome).
pub fn counts(history: &History) -> BTreeMap<String, BTreeMap<Outcome, u64>> {
    let mut out: BTreeMap<String, BTreeMap<Outcome, u64>> = BTreeMap::new();
    for op in &history.ops {
        *out.entry(op.f.clone())
            .or_default()
            .entry(op.outcome)
            .or_default() += 1;
    }
    out
}

/// Nearest-rank quantile of a sorted slice.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub const QUANTILES: [(f64, &str); 4] = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (1.0, "max")];

/// Per f: for each bucket with ok ops, (bucket middle in ns, [p50, p95, p99, max] in ns).
pub type QuantileSeries = BTreeMap<String, Vec<(u64, [u64; 4])>>;

pub fn latency_quantiles(history: &History, bucket: u64) -> QuantileSeries {
    let mut by_bucket: BTreeMap<String, BTreeMap<u64, Vec<u64>>> = BTreeMap::new();
    for op in &history.ops {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let Some(latency) = op.latency_ns() else {
            continue;
        };
        let b = op.complete_time_ns.unwrap_or(op.invoke_time_ns) / bucket;
        by_bucket
            .entry(op.f.clone())
            .or_default()
            .entry(b)
            .or_default()
            .push(latency);
    }
    by_bucket
        .into_iter()
        .map(|(f, buckets)| {
            let points = buckets
                .into_iter()
                .map(|(b, mut latencies)| {
                    latencies.sort_unstable();
                    let qs =
                        QUANTILES.map(|(q, _)| quantile(&latencies, q).expect("non-empty bucket"));
                    (b * bucket + bucket / 2, qs)
                })
                .collect();
            (f, points)
        })
        .collect()
}

/// One bucket of a rate series: completions in `[start_ns, stop_ns)` and their rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateBucket {
    pub start_ns: u64,
    pub stop_ns: u64,
    pub completions: u64,
}

impl RateBucket {
    /// Completions per second over the bucket's own length (never zero: see [`rate_spans`]).
    pub fn per_second(&self) -> f64 {
        self.completions as f64 * 1e9 / (self.stop_ns - self.start_ns) as f64
    }
}

/// Per (f, outcome): every bucket from 0 to the end (zeros included, so an outage shows as a
/// drop to zero rather than a gap). Plotted as steps, so that the area under each step is the
/// bucket's completion count.
pub type RateSeries = BTreeMap<(String, Outcome), Vec<RateBucket>>;

/// The bucket boundaries of a rate series over `[0, end_ns)`. A run rarely ends on a bucket
/// boundary; a short tail (under half a bucket) joins the bucket before it, because a rate over
/// a few milliseconds is noise (a handful of completions in 25 ms reads as a burst of 240/s).
fn rate_spans(end_ns: u64, bucket: u64) -> Vec<(u64, u64)> {
    assert!(bucket > 0, "rate bucket must be positive");
    let end_ns = end_ns.max(1);
    let mut spans: Vec<(u64, u64)> = Vec::new();
    let mut start = 0u64;
    while start < end_ns {
        let stop = start.saturating_add(bucket).min(end_ns);
        spans.push((start, stop));
        start = stop;
    }
    if spans.len() >= 2 {
        let (tail_start, tail_stop) = spans[spans.len() - 1];
        if (tail_stop - tail_start) * 2 < bucket {
            spans.pop();
            spans.last_mut().expect("two spans").1 = tail_stop;
        }
    }
    spans
}

pub fn rates(history: &History, bucket: u64) -> RateSeries {
    let spans = rate_spans(history.end_time_ns, bucket);
    let mut out: BTreeMap<(String, Outcome), Vec<u64>> = BTreeMap::new();
    for op in &history.ops {
        let Some(t) = op.complete_time_ns else {
            continue;
        };
        let row = out
            .entry((op.f.clone(), op.outcome))
            .or_insert_with(|| vec![0; spans.len()]);
        // Completions at or after the end (none in a well-formed history) count in the last.
        let b = spans
            .partition_point(|&(_, stop)| stop <= t)
            .min(spans.len() - 1);
        row[b] += 1;
    }
    out.into_iter()
        .map(|(k, row)| {
            let buckets = row
                .into_iter()
                .zip(&spans)
                .map(|(completions, &(start_ns, stop_ns))| RateBucket {
                    start_ns,
                    stop_ns,
                    completions,
                })
                .collect();
            (k, buckets)
        })
        .collect()
}

/// What clients saw while one fault was active (or outside every fault).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Availability {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub duration_ns: u64,
}

impl Availability {
    pub fn completed(&self) -> u64 {
        self.ok + self.fail + self.info
    }
    /// Fraction of completed ops that succeeded, None when nothing completed.
    pub fn ok_fraction(&self) -> Option<f64> {
        let n = self.completed();
        (n > 0).then(|| self.ok as f64 / n as f64)
    }
    pub fn ok_per_second(&self) -> f64 {
        if self.duration_ns == 0 {
            0.0
        } else {
            self.ok as f64 * 1e9 / self.duration_ns as f64
        }
    }
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
            Outcome::Pending => {}
        }
    }
}

/// Availability per fault (ops completing inside it) and outside all faults.
pub fn availability(history: &History, faults: &[Fault]) -> (Vec<Availability>, Availability) {
    let end = history.end_time_ns;
    let intervals: Vec<(u64, u64)> = faults
        .iter()
        .map(|f| (f.start_ns, f.stop_or(end)))
        .collect();
    let mut per_fault: Vec<Availability> = intervals
        .iter()
        .map(|&(s, e)| Availability {
            duration_ns: e - s,
            ..Default::default()
        })
        .collect();
    let mut outside = Availability::default();
    for op in &history.ops {
        let Some(t) = op.complete_time_ns else {
            continue;
        };
        let mut inside_any = false;
        for (i, &(s, e)) in intervals.iter().enumerate() {
            if t >= s && t < e {
                per_fault[i].add(op.outcome);
                inside_any = true;
            }
        }
        if !inside_any {
            outside.add(op.outcome);
        }
    }
    outside.duration_ns = end.saturating_sub(covered_ns(&intervals));
    (per_fault, outside)
}

/// Total length of the union of intervals.
fn covered_ns(intervals: &[(u64, u64)]) -> u64 {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    let mut total = 0;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in sorted {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_adapts_to_run_length() {
        assert_eq!(bucket_ns(60_000_000_000), 1_000_000_000);
        assert_eq!(bucket_ns(1_000_000_000), 10_000_000);
        assert_eq!(bucket_ns(3_600_000_000_000), 60_000_000_000);
        assert_eq!(bucket_ns(0), 1_000_000);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn covered_merges_overlaps() {
        assert_eq!(covered_ns(&[(0, 10), (5, 15), (20, 25)]), 20);
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;
    use crate::history::parse_jsonl;

    fn steady_history(ops: u64, every_ns: u64) -> History {
        let mut text = String::new();
        for i in 0..ops {
            let t = i * every_ns + every_ns / 2;
            text.push_str(&format!("{{\"index\":{},\"time\":{},\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n", 2 * i, t - 1000));
            text.push_str(&format!("{{\"index\":{},\"time\":{},\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1}}\n", 2 * i + 1, t));
        }
        parse_jsonl(&text)
    }

    #[test]
    fn steady_rate_stays_steady_to_the_end() {
        // One op completing every 100 ms until 2.55 s, 1 s buckets: every bucket is 10/s,
        // including the 0.55 s bucket at the end.
        let h = steady_history(26, 100_000_000);
        let r = rates(&h, 1_000_000_000);
        let points = &r[&("read".to_string(), Outcome::Ok)];
        assert_eq!(points.len(), 3);
        for bucket in points {
            assert!((bucket.per_second() - 10.0).abs() < 1.5, "{points:?}");
        }
    }

    #[test]
    fn a_short_tail_joins_the_bucket_before_it() {
        // 2.03 s of ops every 10 ms: the 30 ms tail would read as a burst on its own.
        let h = steady_history(203, 10_000_000);
        let r = rates(&h, 1_000_000_000);
        let points = &r[&("read".to_string(), Outcome::Ok)];
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!(points[1].stop_ns, h.end_time_ns);
        for bucket in points {
            assert!((bucket.per_second() - 100.0).abs() < 2.0, "{points:?}");
        }
    }

    #[test]
    fn the_area_under_the_rate_is_the_completion_count_bucket_by_bucket() {
        for (ops, every_ns, bucket_ns) in [
            (203, 10_000_000, 1_000_000_000),
            (25, 100_000_000, 1_000_000_000),
            (997, 3_000_000, 250_000_000),
            (1, 5_000, 1_000_000),
        ] {
            let h = steady_history(ops, every_ns);
            let r = rates(&h, bucket_ns);
            let mut total = 0.0;
            for buckets in r.values() {
                let mut previous_stop = 0;
                for b in buckets {
                    assert_eq!(b.start_ns, previous_stop, "buckets tile the run");
                    previous_stop = b.stop_ns;
                    let area = b.per_second() * (b.stop_ns - b.start_ns) as f64 / 1e9;
                    assert!((area - b.completions as f64).abs() < 1e-6, "{b:?}");
                    total += area;
                }
            }
            let completed = h
                .ops
                .iter()
                .filter(|op| op.complete_time_ns.is_some())
                .count();
            assert!(
                (total - completed as f64).abs() < 1e-6,
                "{total} vs {completed}"
            );
        }
    }
}
