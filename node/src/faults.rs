//! Fault injection from outside the store: the knobs the harness turns (`NetFaults`,
//! `NetDelay`, `DiskFaults`, `SlowFsync`), their seeded decision streams (`NetSwitch`,
//! `DiskSwitch`), and `FaultyDisk`, a wrapper that makes any `Disk` tear writes, fail
//! writes and fsyncs, flip bits on reads and stall in fsync. The storage and the event loop
//! never see a knob: the node is handed a faulty disk and a faulty transport
//! (`transport::FaultyTransport`), both switched off unless the harness turns them on.
//!
//! Every decision stream derives from (node seed, node id, purpose), so a run is a pure
//! function of its seed; each fault family draws from its own stream, so turning one on
//! never shifts another's draws.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Duration;

use crate::raft::NodeId;
use crate::storage::{Disk, LogFile};

/// No injected delay is longer than this (a typo such as `5000000` must not stall a run).
pub const MAX_INJECTED_DELAY_MS: u64 = 60_000;

/// Network faults applied to the datagrams this node sends, and loss of those it receives
/// (seeded; not turmoil's fail_rate).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetFaults {
    /// Drop a datagram this node sends.
    pub loss_probability: f64,
    /// Drop a datagram addressed to this node on arrival (a lossy receive path: the node's
    /// peers see a link that loses only what they send to it).
    pub inbound_loss_probability: f64,
    /// Send a datagram twice.
    pub duplicate_probability: f64,
    /// The second copy arrives up to this much later (log-uniform from 1 ms): a late
    /// duplicate is a message from the past (an old term's vote or append), the case a
    /// same-instant copy never exercises. 0 sends both copies at once.
    pub duplicate_max_delay_ms: u64,
    /// Hold a datagram back for a random delay, so later ones overtake it.
    pub reorder_probability: f64,
    pub reorder_max_delay_ms: u64,
}

/// Latency on every datagram this node sends: `base_ms` plus a uniform jitter in
/// `0..=jitter_ms`, and with `spike_probability` a spike of `spike_ms / 2..=spike_ms` on top
/// (a congested switch, a GC pause in a proxy). Jitter reorders datagrams as a side effect.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetDelay {
    pub base_ms: u64,
    pub jitter_ms: u64,
    pub spike_probability: f64,
    pub spike_ms: u64,
}

impl NetDelay {
    pub fn is_active(&self) -> bool {
        self.base_ms > 0
            || self.jitter_ms > 0
            || (self.spike_probability > 0.0 && self.spike_ms > 0)
    }
}

/// Disk faults applied by the faulty disk wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskFaults {
    /// A write keeps only a prefix of its bytes and then fails; the node stops (fail-stop).
    pub torn_write_probability: f64,
    /// A byte read back from the disk is flipped (checksums find it; the node stops).
    pub read_corruption_probability: f64,
    /// A write or fsync fails with EIO; the node stops (fail-stop, as etcd does on fsync errors).
    pub io_error_probability: f64,
}

/// Every fsync (log sync, atomic file replacement) takes `delay_ms` plus a uniform jitter in
/// `0..=jitter_ms` of extra simulated time, during which the node's event loop is blocked, as
/// a single-threaded server blocked in `fdatasync` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlowFsync {
    pub delay_ms: u64,
    pub jitter_ms: u64,
}

/// What the network fault wrapper does with one outgoing datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetAction {
    /// Send it after `delay_ms` (0: now).
    Send {
        delay_ms: u64,
    },
    Drop,
    /// Send it twice, each copy after its own delay.
    Duplicate {
        delay_ms: u64,
        second_delay_ms: u64,
    },
}

/// What the disk fault wrapper does with one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    Write,
    /// Write only this many leading bytes, then fail.
    Torn {
        kept_bytes: usize,
    },
    Fail,
}

/// Derives an independent RNG stream for one purpose from the node seed and node id.
pub(crate) fn stream_rng(seed: u64, id: NodeId, purpose: u64) -> SmallRng {
    let mixed =
        seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    SmallRng::seed_from_u64(mixed)
}

/// Stream purposes (never reuse a number: streams would correlate).
const NET_STREAM: u64 = 1;
const DISK_STREAM: u64 = 2;
const NET_DELAY_STREAM: u64 = 3;
const SLOW_FSYNC_STREAM: u64 = 4;

fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; keep going.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct NetState {
    faults: NetFaults,
    delay: NetDelay,
    rng: SmallRng,
    delay_rng: SmallRng,
}

/// The network fault knobs of one node and their decision streams; cheap to clone (shared).
#[derive(Clone)]
pub struct NetSwitch {
    state: Arc<Mutex<NetState>>,
}

impl std::fmt::Debug for NetSwitch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NetSwitch")
            .field("faults", &self.faults())
            .finish()
    }
}

impl NetSwitch {
    pub fn new(seed: u64, id: NodeId) -> NetSwitch {
        let state = NetState {
            faults: NetFaults::default(),
            delay: NetDelay::default(),
            rng: stream_rng(seed, id, NET_STREAM),
            delay_rng: stream_rng(seed, id, NET_DELAY_STREAM),
        };
        NetSwitch {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub fn set_faults(&self, faults: NetFaults) {
        lock(&self.state).faults = faults;
    }

    pub fn faults(&self) -> NetFaults {
        lock(&self.state).faults
    }

    pub fn set_delay(&self, delay: NetDelay) {
        let mut state = lock(&self.state);
        state.delay = NetDelay {
            base_ms: delay.base_ms.min(MAX_INJECTED_DELAY_MS),
            jitter_ms: delay.jitter_ms.min(MAX_INJECTED_DELAY_MS),
            spike_probability: delay.spike_probability.clamp(0.0, 1.0),
            spike_ms: delay.spike_ms.min(MAX_INJECTED_DELAY_MS),
        };
    }

    pub fn delay(&self) -> NetDelay {
        lock(&self.state).delay
    }

    /// The fate of one outgoing datagram.
    pub fn action(&self) -> NetAction {
        let mut state = lock(&self.state);
        let faults = state.faults;
        let mut action = NetAction::Send { delay_ms: 0 };
        if faults != NetFaults::default() {
            let rng = &mut state.rng;
            if faults.loss_probability > 0.0 && rng.random_bool(faults.loss_probability.min(1.0)) {
                return NetAction::Drop;
            }
            if faults.duplicate_probability > 0.0
                && rng.random_bool(faults.duplicate_probability.min(1.0))
            {
                let second_delay_ms = match faults.duplicate_max_delay_ms {
                    0 => 0,
                    max_ms => log_uniform_ms(rng, max_ms.min(MAX_INJECTED_DELAY_MS)),
                };
                action = NetAction::Duplicate {
                    delay_ms: 0,
                    second_delay_ms,
                };
            } else if faults.reorder_probability > 0.0
                && rng.random_bool(faults.reorder_probability.min(1.0))
            {
                let delay_ms = rng.random_range(1..=faults.reorder_max_delay_ms.max(1));
                action = NetAction::Send { delay_ms };
            }
        }
        let delay = state.delay;
        if !delay.is_active() {
            return action;
        }
        let rng = &mut state.delay_rng;
        match action {
            NetAction::Send { delay_ms } => NetAction::Send {
                delay_ms: delay_ms + draw_latency(&delay, rng),
            },
            NetAction::Duplicate {
                second_delay_ms, ..
            } => NetAction::Duplicate {
                delay_ms: draw_latency(&delay, rng),
                second_delay_ms: second_delay_ms + draw_latency(&delay, rng),
            },
            NetAction::Drop => NetAction::Drop,
        }
    }

    /// Whether to drop a datagram that just arrived (inbound loss).
    pub fn drop_inbound(&self) -> bool {
        let mut state = lock(&self.state);
        let probability = state.faults.inbound_loss_probability;
        probability > 0.0 && state.rng.random_bool(probability.min(1.0))
    }
}

/// Log-uniform in `1..=max_ms`: most late copies are a little late, a few by seconds.
fn log_uniform_ms(rng: &mut SmallRng, max_ms: u64) -> u64 {
    let max = max_ms.max(1) as f64;
    (max.powf(rng.random_range(0.0..=1.0)).round() as u64).clamp(1, max_ms.max(1))
}

fn draw_latency(delay: &NetDelay, rng: &mut SmallRng) -> u64 {
    let mut latency_ms = delay.base_ms + rng.random_range(0..=delay.jitter_ms);
    if delay.spike_probability > 0.0
        && delay.spike_ms > 0
        && rng.random_bool(delay.spike_probability)
    {
        latency_ms += rng.random_range(delay.spike_ms / 2..=delay.spike_ms);
    }
    latency_ms
}

struct DiskState {
    faults: DiskFaults,
    slow_fsync: SlowFsync,
    rng: SmallRng,
    slow_rng: SmallRng,
}

/// The disk fault knobs of one node and their decision streams; cheap to clone (shared).
#[derive(Clone)]
pub struct DiskSwitch {
    state: Arc<Mutex<DiskState>>,
}

impl DiskSwitch {
    pub fn new(seed: u64, id: NodeId) -> DiskSwitch {
        let state = DiskState {
            faults: DiskFaults::default(),
            slow_fsync: SlowFsync::default(),
            rng: stream_rng(seed, id, DISK_STREAM),
            slow_rng: stream_rng(seed, id, SLOW_FSYNC_STREAM),
        };
        DiskSwitch {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub fn set_faults(&self, faults: DiskFaults) {
        lock(&self.state).faults = faults;
    }

    pub fn faults(&self) -> DiskFaults {
        lock(&self.state).faults
    }

    pub fn set_slow_fsync(&self, slow: SlowFsync) {
        lock(&self.state).slow_fsync = SlowFsync {
            delay_ms: slow.delay_ms.min(MAX_INJECTED_DELAY_MS),
            jitter_ms: slow.jitter_ms.min(MAX_INJECTED_DELAY_MS),
        };
    }

    pub fn slow_fsync(&self) -> SlowFsync {
        lock(&self.state).slow_fsync
    }

    pub fn write_action(&self, len: usize) -> WriteAction {
        let mut state = lock(&self.state);
        let faults = state.faults;
        let rng = &mut state.rng;
        if faults.io_error_probability > 0.0
            && rng.random_bool(faults.io_error_probability.min(1.0))
        {
            return WriteAction::Fail;
        }
        if len > 0
            && faults.torn_write_probability > 0.0
            && rng.random_bool(faults.torn_write_probability.min(1.0))
        {
            return WriteAction::Torn {
                kept_bytes: rng.random_range(0..len),
            };
        }
        WriteAction::Write
    }

    pub fn sync_fails(&self) -> bool {
        let mut state = lock(&self.state);
        let probability = state.faults.io_error_probability;
        probability > 0.0 && state.rng.random_bool(probability.min(1.0))
    }

    /// Flips a random bit of `bytes` with the configured read-corruption probability.
    pub fn maybe_corrupt_read(&self, bytes: &mut [u8]) {
        let mut state = lock(&self.state);
        let probability = state.faults.read_corruption_probability;
        if bytes.is_empty() || probability <= 0.0 || !state.rng.random_bool(probability.min(1.0)) {
            return;
        }
        let position = state.rng.random_range(0..bytes.len());
        let bit = state.rng.random_range(0..8u32);
        bytes[position] ^= 1 << bit;
    }

    /// The extra time one fsync takes now (zero unless slow fsync is on).
    pub fn fsync_delay(&self) -> Duration {
        let mut state = lock(&self.state);
        let slow = state.slow_fsync;
        if slow == SlowFsync::default() {
            return Duration::ZERO;
        }
        let extra_ms = slow.delay_ms + state.slow_rng.random_range(0..=slow.jitter_ms);
        Duration::from_millis(extra_ms)
    }

    async fn stall_in_fsync(&self) {
        let delay = self.fsync_delay();
        if !delay.is_zero() {
            // Before the real sync: a crash during a slow fsync leaves the data unsynced.
            tokio::time::sleep(delay).await;
        }
    }
}

/// Any `Disk`, with the faults of a `DiskSwitch` applied from outside.
pub struct FaultyDisk<D: Disk> {
    inner: D,
    switch: DiskSwitch,
}

impl<D: Disk> FaultyDisk<D> {
    pub fn new(inner: D, switch: DiskSwitch) -> FaultyDisk<D> {
        FaultyDisk { inner, switch }
    }
}

/// A log file of a `FaultyDisk`.
pub struct FaultyLogFile<F: LogFile> {
    inner: F,
    switch: DiskSwitch,
}

impl<D: Disk> Disk for FaultyDisk<D> {
    type File = FaultyLogFile<D::File>;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = self.inner.read(path)?;
        if let Some(bytes) = &mut bytes {
            self.switch.maybe_corrupt_read(bytes);
        }
        Ok(bytes)
    }

    async fn write_atomic(&self, path: &Path, temp_path: &Path, bytes: &[u8]) -> io::Result<()> {
        // A torn temp file is never renamed into place: to the reader it is a failed write.
        if self.switch.write_action(bytes.len()) != WriteAction::Write {
            return Err(io::Error::other("injected disk fault"));
        }
        self.switch.stall_in_fsync().await;
        self.inner.write_atomic(path, temp_path, bytes).await
    }

    async fn open_log(&self, path: &Path) -> io::Result<Self::File> {
        let inner = self.inner.open_log(path).await?;
        Ok(FaultyLogFile {
            inner,
            switch: self.switch.clone(),
        })
    }

    fn remove_all(&self, dir: &Path, names: &[&str]) -> io::Result<()> {
        self.inner.remove_all(dir, names)
    }
}

impl<F: LogFile> LogFile for FaultyLogFile<F> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.switch.write_action(bytes.len()) {
            WriteAction::Write => self.inner.append(bytes),
            WriteAction::Torn { kept_bytes } => {
                let _ = self.inner.append(&bytes[..kept_bytes]);
                Err(io::Error::other("injected torn write"))
            }
            WriteAction::Fail => Err(io::Error::other("injected write error")),
        }
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }

    async fn sync(&mut self) -> io::Result<()> {
        if self.switch.sync_fails() {
            return Err(io::Error::other("injected fsync error"));
        }
        self.switch.stall_in_fsync().await;
        self.inner.sync().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(switch: &NetSwitch, count: usize) -> Vec<NetAction> {
        (0..count).map(|_| switch.action()).collect()
    }

    #[test]
    fn net_fault_streams_are_seeded_per_node() {
        let faults = NetFaults {
            loss_probability: 0.2,
            duplicate_probability: 0.2,
            reorder_probability: 0.2,
            reorder_max_delay_ms: 40,
            ..NetFaults::default()
        };
        let [a, b, c] = [
            NetSwitch::new(9, 1),
            NetSwitch::new(9, 1),
            NetSwitch::new(9, 2),
        ];
        for switch in [&a, &b, &c] {
            switch.set_faults(faults);
        }
        let (from_a, from_b, from_c) = (actions(&a, 500), actions(&b, 500), actions(&c, 500));
        assert_eq!(from_a, from_b, "same seed and node: same fault stream");
        assert_ne!(from_a, from_c, "another node draws its own stream");
        let drops = from_a
            .iter()
            .filter(|action| **action == NetAction::Drop)
            .count();
        assert!((60..140).contains(&drops), "{drops} drops of 500 at p=0.2");
        assert!(from_a.iter().all(|action| match action {
            NetAction::Send { delay_ms } => *delay_ms <= 40,
            NetAction::Duplicate {
                delay_ms,
                second_delay_ms,
            } => *delay_ms == 0 && *second_delay_ms == 0,
            NetAction::Drop => true,
        }));
        a.set_faults(NetFaults::default());
        assert!(actions(&a, 100)
            .iter()
            .all(|action| *action == NetAction::Send { delay_ms: 0 }));
    }

    #[test]
    fn delay_draws_base_jitter_and_rare_spikes_from_its_own_stream() {
        let plain = NetSwitch::new(5, 1);
        let delayed = NetSwitch::new(5, 1);
        let loss = NetFaults {
            loss_probability: 0.3,
            ..NetFaults::default()
        };
        plain.set_faults(loss);
        delayed.set_faults(loss);
        delayed.set_delay(NetDelay {
            base_ms: 10,
            jitter_ms: 5,
            spike_probability: 0.05,
            spike_ms: 1_000,
        });
        let (without, with) = (actions(&plain, 2_000), actions(&delayed, 2_000));
        // Turning delay on never changes which datagrams the loss fault drops.
        for (a, b) in without.iter().zip(&with) {
            assert_eq!(*a == NetAction::Drop, *b == NetAction::Drop);
        }
        let delays: Vec<u64> = with
            .iter()
            .filter_map(|action| match action {
                NetAction::Send { delay_ms } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        assert!(delays
            .iter()
            .all(|d| (10..=15).contains(d) || (510..=1_015).contains(d)));
        let spikes = delays.iter().filter(|d| **d > 15).count();
        assert!(
            (20..=130).contains(&spikes),
            "{spikes} spikes of {} at p=0.05",
            delays.len()
        );
        delayed.set_delay(NetDelay::default());
        delayed.set_faults(NetFaults::default());
        assert_eq!(delayed.action(), NetAction::Send { delay_ms: 0 });
    }

    #[test]
    fn disk_faults_fire_only_when_set() {
        let switch = DiskSwitch::new(3, 1);
        assert_eq!(switch.write_action(10), WriteAction::Write);
        assert!(!switch.sync_fails());
        assert_eq!(switch.fsync_delay(), Duration::ZERO);
        switch.set_faults(DiskFaults {
            io_error_probability: 1.0,
            ..Default::default()
        });
        assert_eq!(switch.write_action(10), WriteAction::Fail);
        assert!(switch.sync_fails());
        switch.set_faults(DiskFaults {
            torn_write_probability: 1.0,
            ..Default::default()
        });
        assert!(
            matches!(switch.write_action(10), WriteAction::Torn { kept_bytes } if kept_bytes < 10)
        );
        switch.set_faults(DiskFaults {
            read_corruption_probability: 1.0,
            ..Default::default()
        });
        let mut bytes = vec![0u8; 16];
        switch.maybe_corrupt_read(&mut bytes);
        assert_eq!(
            bytes.iter().map(|byte| byte.count_ones()).sum::<u32>(),
            1,
            "exactly one bit flipped"
        );
        switch.set_slow_fsync(SlowFsync {
            delay_ms: 30,
            jitter_ms: 10,
        });
        for _ in 0..100 {
            let delay = switch.fsync_delay();
            assert!((30..=40).contains(&(delay.as_millis() as u64)), "{delay:?}");
        }
    }

    /// Runs a storage future to completion outside any simulation (real files).
    fn wait<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
            .block_on(future)
    }

    fn entry(index: u64) -> crate::raft::Entry {
        crate::raft::Entry {
            term: 1,
            index,
            payload: crate::raft::EntryPayload::Command(vec![index as u8; 5]),
        }
    }

    #[test]
    fn injected_torn_write_stops_the_write_and_recovery_drops_the_tail() {
        use crate::bugs::Bugs;
        use crate::storage::{RealDisk, Storage};
        let dir = std::env::temp_dir().join(format!("minos-faulty-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let disk = DiskSwitch::new(42, 1);
        let faulty = FaultyDisk::new(RealDisk, disk.clone());
        let (mut storage, _) = wait(Storage::open(faulty, &dir, Bugs::NONE)).unwrap();
        wait(storage.persist(None, &[entry(1)])).unwrap();
        disk.set_faults(DiskFaults {
            torn_write_probability: 1.0,
            ..Default::default()
        });
        let error = wait(storage.persist(None, &[entry(2), entry(3)])).unwrap_err();
        assert!(error.to_string().contains("injected torn write"), "{error}");
        drop(storage);
        disk.set_faults(Default::default());
        let faulty = FaultyDisk::new(RealDisk, disk);
        let (_, recovered) = wait(Storage::open(faulty, &dir, Bugs::NONE)).unwrap();
        // The torn batch may have left at most whole leading records; never a damaged one.
        assert!(!recovered.entries.is_empty() && recovered.entries.len() <= 2);
        assert_eq!(recovered.entries[0], entry(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_corruption_and_fsync_errors_reach_the_storage_as_errors() {
        use crate::bugs::Bugs;
        use crate::storage::{RealDisk, Storage, StorageError};
        let dir = std::env::temp_dir().join(format!("minos-faulty-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let disk = DiskSwitch::new(7, 1);
        let (mut storage, _) = wait(Storage::open(
            FaultyDisk::new(RealDisk, disk.clone()),
            &dir,
            Bugs::NONE,
        ))
        .unwrap();
        let hard_state = crate::raft::HardState {
            term: 1,
            voted_for: Some(1),
        };
        wait(storage.persist(Some(&hard_state), &[entry(1), entry(2)])).unwrap();
        disk.set_faults(DiskFaults {
            io_error_probability: 1.0,
            ..Default::default()
        });
        let error = wait(storage.persist(None, &[entry(3)])).unwrap_err();
        assert!(error.to_string().contains("injected"), "{error}");
        drop(storage);
        disk.set_faults(DiskFaults {
            read_corruption_probability: 1.0,
            ..Default::default()
        });
        // The hard state, read first, comes back with a flipped bit: its checksum refuses it.
        let error = wait(Storage::open(
            FaultyDisk::new(RealDisk, disk.clone()),
            &dir,
            Bugs::NONE,
        ))
        .err()
        .expect("a flipped bit must be found");
        assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
        disk.set_faults(DiskFaults::default());
        // The damage was on the way back, not on the disk.
        let (_, recovered) = wait(Storage::open(
            FaultyDisk::new(RealDisk, disk),
            &dir,
            Bugs::NONE,
        ))
        .unwrap();
        assert_eq!(recovered.entries.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
