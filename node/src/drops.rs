//! Counting the datagrams a node throws away (unauthenticated, malformed, replayed,
//! misaddressed), with rate-limited warnings: the first drop of each reporting period is
//! logged with its detail, the rest are counted and summed up once per period, so that a
//! flood of junk cannot fill the disk with log lines.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::time::{Duration, Instant};

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// No envelope, or a tag that does not verify under the cluster key.
    Unauthenticated,
    /// Authentic but undecodable, or oversized.
    Malformed,
    /// An authentic admin request seen before or outside the freshness window.
    Replayed,
    /// A Raft message for another node id.
    Misaddressed,
    /// An authentic Raft message with an impossible term or index, refused by the core.
    Implausible,
}

impl DropReason {
    fn name(self) -> &'static str {
        match self {
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::Malformed => "malformed",
            DropReason::Replayed => "replayed",
            DropReason::Misaddressed => "misaddressed",
            DropReason::Implausible => "implausible",
        }
    }
}

/// Drop counters of one node.
#[derive(Debug)]
pub struct DroppedDatagrams {
    node: u64,
    period: Duration,
    /// Since the node started.
    totals: BTreeMap<DropReason, u64>,
    /// Since the last summary.
    recent: BTreeMap<DropReason, u64>,
    period_started: Option<Instant>,
}

impl DroppedDatagrams {
    pub const REPORT_PERIOD_MS: u64 = 10_000;

    pub fn new(node: u64) -> Self {
        DroppedDatagrams {
            node,
            period: Duration::from_millis(Self::REPORT_PERIOD_MS),
            totals: BTreeMap::new(),
            recent: BTreeMap::new(),
            period_started: None,
        }
    }

    pub fn total(&self, reason: DropReason) -> u64 {
        self.totals.get(&reason).copied().unwrap_or(0)
    }

    /// Counts one drop; logs it only if it is the first of the current period.
    pub fn record(&mut self, reason: DropReason, from: SocketAddr, detail: &dyn std::fmt::Display) {
        *self.totals.entry(reason).or_default() += 1;
        let first_of_period = self.recent.is_empty();
        *self.recent.entry(reason).or_default() += 1;
        if first_of_period {
            self.period_started = Some(Instant::now());
            tracing::warn!(
                node = self.node,
                %from,
                reason = reason.name(),
                %detail,
                "dropping a datagram (further drops are counted and summed up every {} s)",
                self.period.as_secs()
            );
        }
    }

    /// Logs the counts of the period once it is over.
    pub fn maybe_report(&mut self) {
        let Some(started) = self.period_started else {
            return;
        };
        if started.elapsed() < self.period {
            return;
        }
        let recent = std::mem::take(&mut self.recent);
        self.period_started = None;
        let summary = |counts: &BTreeMap<DropReason, u64>| {
            counts
                .iter()
                .map(|(reason, count)| format!("{}={count}", reason.name()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        tracing::warn!(
            node = self.node,
            recent = %summary(&recent),
            total = %summary(&self.totals),
            "dropped datagrams in the last {} s",
            self.period.as_secs()
        );
    }
}
