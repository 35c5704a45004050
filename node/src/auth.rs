//! Datagram authentication: every datagram (peer, client and admin traffic alike) travels in
//! an envelope sealed with HMAC-SHA256 (RFC 2104) under the cluster key. The existing encoding
//! (`protocol::Wire`) is the envelope's payload, unchanged; this module is the only place that
//! knows the envelope.
//!
//! Envelope: `MAGIC (4) | sent_ms (u64 LE) | nonce (u64 LE) | payload | tag (32)`, the tag
//! covering every byte before it. `sent_ms` is the sender's clock (Unix milliseconds on real
//! sockets, a fixed epoch plus turmoil's simulated time in simulation) and `nonce` is unique
//! per sender; together they let a node refuse replayed admin requests ([`ReplayGuard`]).
//!
//! HMAC is written out here over `sha2` (already a dependency) instead of pulling in the
//! `hmac` + `digest` crates: it is a dozen lines, checked against RFC 4231's test vectors.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::protocol::MAX_DATAGRAM_BYTES;
use crate::transport::Network;

const MAGIC: [u8; 4] = *b"MNA1";
const TAG_BYTES: usize = 32;
const HEADER_BYTES: usize = MAGIC.len() + 8 + 8;
/// Bytes the envelope adds to a payload.
pub const ENVELOPE_OVERHEAD_BYTES: usize = HEADER_BYTES + TAG_BYTES;
/// The largest sealed datagram (payloads are bounded by `MAX_DATAGRAM_BYTES`).
pub const MAX_SEALED_BYTES: usize = MAX_DATAGRAM_BYTES + ENVELOPE_OVERHEAD_BYTES;
/// Cluster keys are 32 random bytes (the SHA-256 block size halved, as RFC 2104 advises: at
/// least the hash output length).
pub const KEY_BYTES: usize = 32;
/// Simulated clocks start here (2023-11-14), so simulated and real timestamps look alike.
const SIM_EPOCH_MS: u64 = 1_700_000_000_000;

/// The shared secret of one cluster. Whoever holds it is trusted as a member and as an
/// administrator: there are no per-node keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret (options are logged with `{:?}`).
        f.write_str("ClusterKey(..)")
    }
}

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: String, mode: u32 },
    #[error("{path}: not a cluster key: {problem} (create one with `minos keygen FILE`)")]
    Format { path: String, problem: String },
    #[error("{path}: already exists; refusing to overwrite a cluster key")]
    Exists { path: String },
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> ClusterKey {
        ClusterKey(bytes)
    }

    /// The key a simulated run uses: derived from the run seed, so that simulated nodes and
    /// clients run the same sealing code as real ones and the run stays deterministic.
    pub fn for_simulation(run_seed: u64) -> ClusterKey {
        let mut hasher = Sha256::new();
        hasher.update(b"minos simulated cluster key v1");
        hasher.update(run_seed.to_le_bytes());
        ClusterKey(hasher.finalize().into())
    }

    /// 32 bytes from the operating system's random source (real processes only).
    pub fn generate() -> std::io::Result<ClusterKey> {
        use std::io::Read;
        let mut bytes = [0u8; KEY_BYTES];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(ClusterKey(bytes))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Result<ClusterKey, String> {
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 {
            return Err(format!(
                "want {} hex digits, found {} characters",
                KEY_BYTES * 2,
                text.chars().count().min(10_000)
            ));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = text
                .get(2 * i..2 * i + 2)
                .ok_or_else(|| "not hex".to_string())?;
            // `from_str_radix` alone would take a leading `+`: "+0" is not a key's byte.
            let digits = pair.bytes().all(|digit| digit.is_ascii_hexdigit());
            *byte = u8::from_str_radix(pair, 16)
                .ok()
                .filter(|_| digits)
                .ok_or_else(|| format!("{pair:?} at character {} is not hex", 2 * i + 1))?;
        }
        Ok(ClusterKey(bytes))
    }

    /// Reads a key file written by [`ClusterKey::write_new`]. Refuses files that group or
    /// others may read: a leaked key hands the cluster over.
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let shown = path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io)?;
        if !metadata.is_file() {
            return Err(KeyError::Format {
                path: shown,
                problem: "not a regular file".into(),
            });
        }
        if metadata.len() > 1024 {
            return Err(KeyError::Format {
                path: shown,
                problem: format!("{} bytes, a key file holds 65", metadata.len()),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions { path: shown, mode });
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        ClusterKey::from_hex(&text).map_err(|problem| KeyError::Format {
            path: shown,
            problem,
        })
    }

    /// Creates `path` (mode 0600, never overwriting) holding a fresh key in hex.
    pub fn write_new(path: &Path) -> Result<ClusterKey, KeyError> {
        use std::io::Write;
        let shown = path.display().to_string();
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        let key = ClusterKey::generate().map_err(io)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: shown.clone(),
                }
            } else {
                io(source)
            }
        })?;
        writeln!(file, "{}", key.to_hex()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key)
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block_key.map(|byte| byte ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block_key.map(|byte| byte ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Compares tags without an early exit, so timing does not reveal how many bytes matched.
fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a datagram was not accepted as authentic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("not an authenticated datagram (no envelope)")]
    NoEnvelope,
    #[error("authentication tag does not match the cluster key")]
    BadTag,
}

/// A datagram whose tag verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub sent_ms: u64,
    pub nonce: u64,
    pub payload: &'a [u8],
}

/// Seals outgoing payloads and opens incoming datagrams under one cluster key.
#[derive(Clone, Debug)]
pub struct Sealer {
    key: ClusterKey,
    network: Network,
    nonce_base: u64,
    sealed_count: u64,
}

impl Sealer {
    /// `nonce_base` distinguishes senders sharing a key (a node id, a client id); nonces are
    /// `base + n` for the n-th sealed datagram, so they never repeat within a sender.
    pub fn new(key: ClusterKey, network: Network, nonce_base: u64) -> Sealer {
        let mut nonce_base = nonce_base.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if network == Network::Real {
            // Two real processes may share a base (one --client-id used twice): mix in the
            // process and the start time so that their nonces differ. Simulated runs keep
            // the seeded base: determinism.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64);
            nonce_base ^= nanos ^ u64::from(std::process::id()).rotate_left(32);
        }
        Sealer {
            key,
            network,
            nonce_base,
            sealed_count: 0,
        }
    }

    /// Milliseconds on this network's clock: Unix time on real sockets, turmoil's simulated
    /// time (from a fixed epoch) in simulation, so the simulated path stays deterministic.
    pub fn now_ms(&self) -> u64 {
        match self.network {
            Network::Simulated => {
                let elapsed = turmoil::sim_elapsed().unwrap_or_default();
                SIM_EPOCH_MS.saturating_add(elapsed.as_millis() as u64)
            }
            Network::Real => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64),
        }
    }

    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        self.sealed_count += 1;
        let nonce = self.nonce_base.wrapping_add(self.sealed_count);
        let sent_ms = self.now_ms();
        seal_with(&self.key, sent_ms, nonce, payload)
    }

    pub fn open<'a>(&self, bytes: &'a [u8]) -> Result<Opened<'a>, AuthError> {
        open_with(&self.key, bytes)
    }
}

/// Seals `payload` with an explicit timestamp and nonce (tests use this to build replays).
pub fn seal_with(key: &ClusterKey, sent_ms: u64, nonce: u64, payload: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(payload.len() + ENVELOPE_OVERHEAD_BYTES);
    sealed.extend_from_slice(&MAGIC);
    sealed.extend_from_slice(&sent_ms.to_le_bytes());
    sealed.extend_from_slice(&nonce.to_le_bytes());
    sealed.extend_from_slice(payload);
    let tag = hmac_sha256(&key.0, &[&sealed]);
    sealed.extend_from_slice(&tag);
    sealed
}

/// Verifies and unwraps one datagram.
pub fn open_with<'a>(key: &ClusterKey, bytes: &'a [u8]) -> Result<Opened<'a>, AuthError> {
    if bytes.len() < ENVELOPE_OVERHEAD_BYTES || bytes[..MAGIC.len()] != MAGIC {
        return Err(AuthError::NoEnvelope);
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
    if !tags_equal(&hmac_sha256(&key.0, &[body]), tag) {
        return Err(AuthError::BadTag);
    }
    let field = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(word)
    };
    Ok(Opened {
        sent_ms: field(MAGIC.len()),
        nonce: field(MAGIC.len() + 8),
        payload: &body[HEADER_BYTES..],
    })
}

/// Replay protection for requests whose replay would change the cluster (admin requests:
/// a recorded `remove-member` replayed after the member was re-added would remove it again).
/// A request is accepted once, and only while its timestamp is within `window_ms` of the
/// node's clock; the (timestamp, nonce) pairs of the window are remembered, up to a bound.
///
/// Raft messages need no guard: a replayed one is either of an older term (ignored as
/// stale) or a duplicate within its term, which Raft tolerates by design (the simulated
/// network duplicates and delays them in every run). Data requests are deduplicated by the
/// session table.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: u64,
    /// When this node (process) started: what it saw before is forgotten, so a request
    /// sealed earlier is refused rather than replayed into a restarted node.
    started_ms: u64,
    seen: std::collections::BTreeSet<(u64, u64)>,
}

/// Why an authentic request was refused as a possible replay.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("request timestamp {sent_ms} is more than {window_ms} ms from the node's clock {now_ms} (replayed, or clocks too far apart)")]
    Stale {
        sent_ms: u64,
        now_ms: u64,
        window_ms: u64,
    },
    #[error("request already seen (replayed)")]
    Replayed,
    #[error("request sealed at {sent_ms}, before this node started at {started_ms} (replayed, or sent before the restart: send it again)")]
    BeforeStart { sent_ms: u64, started_ms: u64 },
    #[error("too many admin requests in the replay window")]
    Full,
}

impl ReplayGuard {
    pub const DEFAULT_WINDOW_MS: u64 = 30_000;
    const MAX_REMEMBERED: usize = 100_000;

    /// A guard for a node that started at `started_ms` (its clock).
    pub fn new(window_ms: u64, started_ms: u64) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            started_ms,
            seen: Default::default(),
        }
    }

    pub fn check(&mut self, opened: &Opened<'_>, now_ms: u64) -> Result<(), ReplayError> {
        if opened.sent_ms < self.started_ms {
            return Err(ReplayError::BeforeStart {
                sent_ms: opened.sent_ms,
                started_ms: self.started_ms,
            });
        }
        if opened.sent_ms.abs_diff(now_ms) > self.window_ms {
            return Err(ReplayError::Stale {
                sent_ms: opened.sent_ms,
                now_ms,
                window_ms: self.window_ms,
            });
        }
        // Entries older than the window can no longer pass the timestamp check: forget them.
        let horizon = now_ms.saturating_sub(self.window_ms);
        self.seen = self.seen.split_off(&(horizon, 0));
        if self.seen.len() >= Self::MAX_REMEMBERED {
            return Err(ReplayError::Full);
        }
        if !self.seen.insert((opened.sent_ms, opened.nonce)) {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231_test_vectors() {
        // Test case 1.
        let tag = hmac_sha256(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(&tag),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2, message split across parts.
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let tag = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&tag),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn sealed_datagrams_open_only_under_the_same_key_and_unaltered() {
        let key = ClusterKey::for_simulation(1);
        let sealed = seal_with(&key, 5, 9, b"payload");
        let opened = open_with(&key, &sealed).unwrap();
        assert_eq!(
            (opened.sent_ms, opened.nonce, opened.payload),
            (5, 9, &b"payload"[..])
        );
        assert_eq!(
            open_with(&ClusterKey::for_simulation(2), &sealed),
            Err(AuthError::BadTag)
        );
        for position in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[position] ^= 0x01;
            assert!(open_with(&key, &altered).is_err(), "flip at {position}");
        }
        assert_eq!(open_with(&key, b"plain"), Err(AuthError::NoEnvelope));
        assert_eq!(open_with(&key, &sealed[..10]), Err(AuthError::NoEnvelope));
    }

    #[test]
    fn keys_are_exactly_64_hex_digits() {
        let key = ClusterKey::from_hex(&"0f".repeat(32)).unwrap();
        assert_eq!(key.to_hex(), "0f".repeat(32));
        // `u8::from_str_radix` takes a sign: "+0" must not read as the byte 0.
        for bad in [
            "+0".repeat(32),
            "-0".repeat(32),
            "0g".repeat(32),
            "0f".repeat(31),
        ] {
            assert!(ClusterKey::from_hex(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replay_guard_accepts_once_and_only_while_fresh() {
        let mut guard = ReplayGuard::new(1_000, 9_000);
        let at = |sent_ms, nonce| Opened {
            sent_ms,
            nonce,
            payload: b"",
        };
        assert_eq!(guard.check(&at(10_000, 1), 10_500), Ok(()));
        assert_eq!(
            guard.check(&at(10_000, 1), 10_600),
            Err(ReplayError::Replayed)
        );
        assert_eq!(guard.check(&at(10_000, 2), 10_600), Ok(()));
        assert!(matches!(
            guard.check(&at(10_000, 1), 11_001),
            Err(ReplayError::Stale { .. })
        ));
        assert!(matches!(
            guard.check(&at(20_000, 3), 10_000),
            Err(ReplayError::Stale { .. })
        ));
        // A node restarted at 10,000 remembers nothing from before: a request sealed before
        // it started is refused, even inside the window.
        let mut restarted = ReplayGuard::new(1_000, 10_000);
        assert!(matches!(
            restarted.check(&at(9_999, 4), 10_100),
            Err(ReplayError::BeforeStart { .. })
        ));
        assert_eq!(restarted.check(&at(10_050, 5), 10_100), Ok(()));
    }

    #[test]
    fn key_files_round_trip_and_loose_permissions_are_refused() {
        let dir = std::env::temp_dir().join(format!("minos-key-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cluster.key");
        let key = ClusterKey::write_new(&path).unwrap();
        assert_eq!(ClusterKey::load(&path).unwrap(), key);
        assert!(matches!(
            ClusterKey::write_new(&path),
            Err(KeyError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = ClusterKey::load(&path).unwrap_err();
            assert!(
                matches!(error, KeyError::Permissions { mode: 0o644, .. }),
                "{error}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(
            ClusterKey::load(&path),
            Err(KeyError::Format { .. })
        ));
        assert!(
            format!("{key:?}").contains(".."),
            "Debug never shows the key"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
