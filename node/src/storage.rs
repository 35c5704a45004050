//! Durable Raft state: the hard state (term and vote) and the log.
//!
//! - Hard state: one small checksummed file replaced atomically (write a temp file, fsync,
//!   rename, fsync the directory), so term and vote change together or not at all.
//! - Log: an append-only file of records `[len u32][crc32 u32][entry]`. A conflicting suffix is
//!   cut off with `set_len`. Recovery discards a torn last record (a crash mid-append) and
//!   reports any other damage as corruption instead of guessing.
//!
//! - Snapshot: one checksummed file (index, term, voters, state machine bytes) replaced
//!   atomically. The log then starts after it: compaction rewrites the log file with the tail
//!   only (atomically), and recovery drops log entries the snapshot covers, or the whole log
//!   when it does not hold the snapshot's last entry (a crash while installing one).
//!
//! The same code runs on real files (`RealDisk`, for `minos node`) and on turmoil's simulated
//! file system (`SimDisk`), where a crash loses exactly what was not synced.

use std::io;
use std::path::{Path, PathBuf};

use crate::bugs::{Bug, Bugs};
use crate::codec::{crc32, ByteReader, ByteWriter};
use crate::raft::{
    Entry, EntryPayload, HardState, LogIndex, RecoveredState, Snapshot, SnapshotMeta,
};

const HARD_STATE_FILE: &str = "hard_state";
const HARD_STATE_TEMP_FILE: &str = "hard_state.tmp";
const LOG_FILE: &str = "raft.log";
const LOG_TEMP_FILE: &str = "raft.log.tmp";
const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_TEMP_FILE: &str = "snapshot.tmp";
const RECORD_HEADER_BYTES: usize = 8;
/// No honest record is this large; a bigger length field is damage, not a torn tail.
const MAX_RECORD_BYTES: usize = 16 << 20;

/// A storage failure. Any error while persisting is fatal for the node (fail-stop).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
}

/// A file system the storage can live on: real files or turmoil's simulation, possibly
/// wrapped (`faults::FaultyDisk`). Operations that wait for the device (fsync) are async, so
/// that a slow device takes (simulated) time; the others are plain calls.
#[allow(async_fn_in_trait)] // one node is one task; its futures never cross threads
pub trait Disk {
    type File: LogFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The whole file, or `None` when it does not exist.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Replaces `path` with `bytes` atomically and durably.
    async fn write_atomic(&self, path: &Path, temp_path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Opens `path` for appending, creating it (durably) when missing.
    async fn open_log(&self, path: &Path) -> io::Result<Self::File>;
    /// Removes the files `names` of `dir` (missing ones are fine) and makes that durable.
    fn remove_all(&self, dir: &Path, names: &[&str]) -> io::Result<()>;
}

/// An open append-only log file.
#[allow(async_fn_in_trait)]
pub trait LogFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    async fn sync(&mut self) -> io::Result<()>;
}

/// Real files (`std::fs`), for `minos node`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealDisk;
/// turmoil's per-host simulated file system (feature `unstable-fs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimDisk;

fn sync_real_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn sync_sim_dir(dir: &Path) -> io::Result<()> {
    turmoil::fs::shim::std::fs::sync_dir(dir)
}

/// The two backends have the same API shape; one body serves both.
macro_rules! file_system_disk {
    ($disk:ident, $file:ident, [$($fs:tt)+], $sync_dir:ident) => {
        pub struct $file {
            file: $($fs)+::File,
        }

        impl Disk for $disk {
            type File = $file;

            fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
                use $($fs)+ as fs;
                fs::create_dir_all(dir)?;
                if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                    $sync_dir(parent)?;
                }
                Ok(())
            }

            fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
                use $($fs)+ as fs;
                match fs::read(path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(error),
                }
            }

            async fn write_atomic(&self, path: &Path, temp_path: &Path, bytes: &[u8]) -> io::Result<()> {
                use std::io::Write;
                use $($fs)+ as fs;
                let mut temp = fs::File::create(temp_path)?;
                temp.write_all(bytes)?;
                temp.sync_all()?;
                drop(temp);
                fs::rename(temp_path, path)?;
                $sync_dir(path.parent().unwrap_or(Path::new(".")))
            }

            async fn open_log(&self, path: &Path) -> io::Result<$file> {
                use std::io::{Seek, SeekFrom};
                use $($fs)+ as fs;
                let existed = fs::metadata(path).is_ok();
                let mut file = fs::OpenOptions::new().read(true).write(true).create(true).open(path)?;
                if !existed {
                    file.sync_all()?;
                    $sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                }
                file.seek(SeekFrom::End(0))?;
                Ok($file { file })
            }

            fn remove_all(&self, dir: &Path, names: &[&str]) -> io::Result<()> {
                use $($fs)+ as fs;
                if fs::metadata(dir).is_err() {
                    return Ok(());
                }
                for name in names {
                    match fs::remove_file(dir.join(name)) {
                        Ok(()) => {}
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error),
                    }
                }
                $sync_dir(dir)
            }
        }

        impl LogFile for $file {
            fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
                use std::io::Write;
                self.file.write_all(bytes)
            }

            fn truncate(&mut self, len: u64) -> io::Result<()> {
                use std::io::{Seek, SeekFrom};
                self.file.set_len(len)?;
                self.file.seek(SeekFrom::Start(len))?;
                Ok(())
            }

            async fn sync(&mut self) -> io::Result<()> {
                self.file.sync_data()
            }
        }
    };
}

file_system_disk!(RealDisk, RealLogFile, [std::fs], sync_real_dir);
file_system_disk!(
    SimDisk,
    SimLogFile,
    [turmoil::fs::shim::std::fs],
    sync_sim_dir
);

/// The durable hard state and log of one node.
pub struct Storage<D: Disk> {
    disk: D,
    dir: PathBuf,
    log: D::File,
    /// `offsets[i]` is the byte offset of the record of entry `first_index + i`.
    offsets: Vec<u64>,
    /// Index of the first stored entry: the snapshot's index + 1 (1 without a snapshot).
    first_index: LogIndex,
    snapshot_meta: Option<SnapshotMeta>,
    log_len: u64,
    hard_state: HardState,
    unsynced: bool,
    bugs: Bugs,
}

impl<D: Disk> Storage<D> {
    /// Opens (or creates) the storage in `dir` and recovers the durable state.
    pub async fn open(
        disk: D,
        dir: &Path,
        bugs: Bugs,
    ) -> Result<(Storage<D>, RecoveredState), StorageError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, source }
        };
        disk.create_dir_all(dir).map_err(io_error(dir))?;
        let hard_state_path = dir.join(HARD_STATE_FILE);
        let hard_state = match disk
            .read(&hard_state_path)
            .map_err(io_error(&hard_state_path))?
        {
            None => HardState {
                term: 0,
                voted_for: None,
            },
            Some(bytes) => decode_hard_state(&bytes).map_err(|detail| StorageError::Corrupt {
                path: hard_state_path.clone(),
                detail,
            })?,
        };
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match disk
            .read(&snapshot_path)
            .map_err(io_error(&snapshot_path))?
        {
            None => None,
            Some(bytes) => {
                Some(
                    decode_snapshot(&bytes).map_err(|detail| StorageError::Corrupt {
                        path: snapshot_path.clone(),
                        detail,
                    })?,
                )
            }
        };
        let log_path = dir.join(LOG_FILE);
        let mut log_bytes = disk
            .read(&log_path)
            .map_err(io_error(&log_path))?
            .unwrap_or_default();
        let recovered_log = parse_log(&log_bytes).map_err(|detail| StorageError::Corrupt {
            path: log_path.clone(),
            detail,
        })?;
        let mut recovered_log = after_snapshot(recovered_log, snapshot.as_ref().map(|s| &s.meta))
            .map_err(|detail| StorageError::Corrupt {
            path: log_path.clone(),
            detail,
        })?;
        let mut log = disk
            .open_log(&log_path)
            .await
            .map_err(io_error(&log_path))?;
        if recovered_log.discard_all {
            // The snapshot replaced a log that does not lead to it (a crash while installing).
            log.truncate(0).map_err(io_error(&log_path))?;
            log.sync().await.map_err(io_error(&log_path))?;
            recovered_log.valid_len = 0;
            log_bytes.clear();
        }
        if recovered_log.valid_len < log_bytes.len() as u64 {
            tracing::warn!(
                discarded_bytes = log_bytes.len() as u64 - recovered_log.valid_len,
                "discarding a torn record at the end of the log"
            );
            log.truncate(recovered_log.valid_len)
                .map_err(io_error(&log_path))?;
            log.sync().await.map_err(io_error(&log_path))?;
        }
        let storage = Storage {
            disk,
            dir: dir.to_path_buf(),
            log,
            offsets: recovered_log.offsets,
            first_index: recovered_log.first_index,
            snapshot_meta: snapshot.as_ref().map(|snapshot| snapshot.meta.clone()),
            log_len: recovered_log.valid_len,
            hard_state: hard_state.clone(),
            unsynced: false,
            bugs,
        };
        let recovered = RecoveredState {
            hard_state,
            entries: recovered_log.entries,
            applied_index: snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.index),
            snapshot,
        };
        Ok((storage, recovered))
    }

    /// Reads the durable state of `dir` without changing anything (no directory creation, no
    /// torn-tail repair): safe on the data directory of a running node.
    pub fn inspect(disk: &D, dir: &Path) -> Result<RecoveredState, StorageError> {
        let hard_state_path = dir.join(HARD_STATE_FILE);
        let read = |path: &Path| {
            disk.read(path).map_err(|source| StorageError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let hard_state = match read(&hard_state_path)? {
            None => HardState {
                term: 0,
                voted_for: None,
            },
            Some(bytes) => decode_hard_state(&bytes).map_err(|detail| StorageError::Corrupt {
                path: hard_state_path.clone(),
                detail,
            })?,
        };
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match read(&snapshot_path)? {
            None => None,
            Some(bytes) => {
                Some(
                    decode_snapshot(&bytes).map_err(|detail| StorageError::Corrupt {
                        path: snapshot_path.clone(),
                        detail,
                    })?,
                )
            }
        };
        let log_path = dir.join(LOG_FILE);
        let log_bytes = read(&log_path)?.unwrap_or_default();
        let corrupt = |detail| StorageError::Corrupt {
            path: log_path.clone(),
            detail,
        };
        let log = parse_log(&log_bytes).map_err(corrupt)?;
        let log = after_snapshot(log, snapshot.as_ref().map(|s| &s.meta)).map_err(corrupt)?;
        Ok(RecoveredState {
            hard_state,
            entries: log.entries,
            applied_index: snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.index),
            snapshot,
        })
    }

    /// Removes every file of a storage in `dir`, durably: the next `open` finds an empty
    /// disk (a replaced drive, a node rebuilt from nothing).
    pub fn destroy(disk: &D, dir: &Path) -> Result<(), StorageError> {
        let files = [
            HARD_STATE_FILE,
            HARD_STATE_TEMP_FILE,
            LOG_FILE,
            LOG_TEMP_FILE,
            SNAPSHOT_FILE,
            SNAPSHOT_TEMP_FILE,
        ];
        disk.remove_all(dir, &files)
            .map_err(|source| StorageError::Io {
                path: dir.to_path_buf(),
                source,
            })
    }

    pub fn last_index(&self) -> LogIndex {
        self.first_index + self.offsets.len() as LogIndex - 1
    }

    /// Entries stored after the snapshot.
    pub fn entries_count(&self) -> usize {
        self.offsets.len()
    }

    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot_meta.as_ref()
    }

    /// Replaces the snapshot file atomically and durably.
    async fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let bytes = encode_snapshot(snapshot);
        let path = self.dir.join(SNAPSHOT_FILE);
        let temp_path = self.dir.join(SNAPSHOT_TEMP_FILE);
        self.disk
            .write_atomic(&path, &temp_path, &bytes)
            .await
            .map_err(|source| self.io_error(SNAPSHOT_FILE, source))?;
        self.snapshot_meta = Some(snapshot.meta.clone());
        Ok(())
    }

    /// Log compaction: saves `snapshot` (taken by this node at an applied index), then rewrites
    /// the log file with the entries after it only. A crash in between leaves the old log,
    /// whose covered prefix recovery drops.
    pub async fn compact(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let index = snapshot.meta.index;
        assert!(
            index >= self.first_index && index <= self.last_index(),
            "compaction point {index} outside the stored log {}..={}",
            self.first_index,
            self.last_index()
        );
        self.sync().await?;
        self.save_snapshot(snapshot).await?;
        let log_path = self.dir.join(LOG_FILE);
        let bytes = self
            .disk
            .read(&log_path)
            .map_err(|source| self.io_error(LOG_FILE, source))?
            .unwrap_or_default();
        let kept_from = (index + 1 - self.first_index) as usize;
        let cut = self.offsets.get(kept_from).copied().unwrap_or(self.log_len);
        assert!(
            cut <= bytes.len() as u64,
            "the log file is shorter than recorded"
        );
        let tail = &bytes[cut as usize..self.log_len as usize];
        // What is copied must be what was written: a bit flipped on the way back from the
        // device would otherwise become the only copy of these entries.
        let copied = parse_log(tail).map_err(|detail| StorageError::Corrupt {
            path: log_path.clone(),
            detail: format!("compaction read back the log's tail: {detail}"),
        })?;
        if copied.valid_len != tail.len() as u64
            || copied.entries.len() != self.offsets.len() - kept_from
        {
            return Err(StorageError::Corrupt {
                path: log_path,
                detail: "compaction read back a damaged log tail".to_string(),
            });
        }
        let temp_path = self.dir.join(LOG_TEMP_FILE);
        self.disk
            .write_atomic(&log_path, &temp_path, tail)
            .await
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.log = self
            .disk
            .open_log(&log_path)
            .await
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.offsets = self.offsets[kept_from..]
            .iter()
            .map(|offset| offset - cut)
            .collect();
        self.log_len -= cut;
        self.first_index = index + 1;
        Ok(())
    }

    /// A snapshot installed from the leader replaces the whole log: saved first, then the log
    /// file is emptied (recovery drops a log that does not lead to the snapshot anyway).
    pub async fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.save_snapshot(snapshot).await?;
        self.log
            .truncate(0)
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.log
            .sync()
            .await
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.unsynced = false;
        self.offsets.clear();
        self.log_len = 0;
        self.first_index = snapshot.meta.index + 1;
        Ok(())
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    fn io_error(&self, file: &str, source: io::Error) -> StorageError {
        StorageError::Io {
            path: self.dir.join(file),
            source,
        }
    }

    /// Persists a Ready's state: entries appended and synced, then the hard state replaced.
    /// Returns only when everything is durable.
    pub async fn persist(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        self.append(entries)?;
        self.sync().await?;
        if let Some(hard_state) = hard_state {
            self.save_hard_state(hard_state).await?;
        }
        Ok(())
    }

    /// Replaces the hard state atomically and durably.
    pub async fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        if *hard_state == self.hard_state {
            return Ok(());
        }
        // Planted bug VolatileVote: term and vote live only in memory, so a restarted node
        // forgets its vote and can vote twice in one term, electing two leaders (Raft's
        // figure 2 requires currentTerm and votedFor on stable storage before replying).
        if self.bugs.has(Bug::VolatileVote) {
            self.hard_state = hard_state.clone();
            return Ok(());
        }
        let bytes = encode_hard_state(hard_state);
        let path = self.dir.join(HARD_STATE_FILE);
        let temp_path = self.dir.join(HARD_STATE_TEMP_FILE);
        self.disk
            .write_atomic(&path, &temp_path, &bytes)
            .await
            .map_err(|source| self.io_error(HARD_STATE_FILE, source))?;
        self.hard_state = hard_state.clone();
        Ok(())
    }

    /// Appends entries (not yet synced). The first entry replaces any stored entry at its
    /// index and everything after it.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        assert!(
            first.index >= self.first_index,
            "append at {} behind the snapshot (log starts at {})",
            first.index,
            self.first_index
        );
        assert!(
            first.index <= self.last_index() + 1,
            "append leaves a gap: {} after {}",
            first.index,
            self.last_index()
        );
        for pair in entries.windows(2) {
            assert_eq!(
                pair[1].index,
                pair[0].index + 1,
                "appended entries are contiguous"
            );
        }
        if first.index <= self.last_index() {
            let position = (first.index - self.first_index) as usize;
            let cut = self.offsets[position];
            self.log
                .truncate(cut)
                .map_err(|source| self.io_error(LOG_FILE, source))?;
            self.offsets.truncate(position);
            self.log_len = cut;
            self.unsynced = true;
        }
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        for entry in entries {
            offsets.push(self.log_len + bytes.len() as u64);
            let payload = encode_entry(entry);
            assert!(
                payload.len() <= MAX_RECORD_BYTES,
                "entry {} is too large to store",
                entry.index
            );
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        self.log
            .append(&bytes)
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.offsets.extend(offsets);
        self.log_len += bytes.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Makes every appended entry durable.
    pub async fn sync(&mut self) -> Result<(), StorageError> {
        if !self.unsynced {
            return Ok(());
        }
        self.log
            .sync()
            .await
            .map_err(|source| self.io_error(LOG_FILE, source))?;
        self.unsynced = false;
        Ok(())
    }
}

/// A whole-file record: a CRC-32 of the body, then the body.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut bytes = crc32(body).to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// The body of a sealed record, or why it cannot be trusted (`what` names the file's kind).
fn unseal<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    if bytes.len() < 4 {
        return Err(format!("{what} is {} bytes long", bytes.len()));
    }
    let (crc, body) = bytes.split_at(4);
    if crc32(body).to_le_bytes() != crc {
        return Err(format!("{what} checksum mismatch"));
    }
    Ok(body)
}

fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    let mut writer = ByteWriter::default();
    writer.u64(hard_state.term);
    match hard_state.voted_for {
        None => writer.u8(0),
        Some(node) => writer.u8(1).u64(node),
    };
    seal(&writer.bytes)
}

fn decode_hard_state(bytes: &[u8]) -> Result<HardState, String> {
    let body = unseal(bytes, "hard state")?;
    let mut reader = ByteReader::new(body);
    let decode = |reader: &mut ByteReader<'_>| -> Result<HardState, crate::codec::DecodeError> {
        let term = reader.u64()?;
        let voted_for = match reader.u8()? {
            0 => None,
            _ => Some(reader.u64()?),
        };
        reader.finish()?;
        Ok(HardState { term, voted_for })
    };
    decode(&mut reader).map_err(|error| error.to_string())
}

const PAYLOAD_NOOP: u8 = 0;
const PAYLOAD_COMMAND: u8 = 1;
/// Any other payload kind the core adds later, stored as JSON.
const PAYLOAD_OTHER_JSON: u8 = 2;

/// The compact binary form of an entry, used in log records and on the wire.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut writer = ByteWriter::default();
    writer.u64(entry.term).u64(entry.index);
    match &entry.payload {
        EntryPayload::Noop => writer.u8(PAYLOAD_NOOP),
        EntryPayload::Command(bytes) => writer.u8(PAYLOAD_COMMAND).bytes(bytes),
        #[allow(unreachable_patterns)]
        other => writer
            .u8(PAYLOAD_OTHER_JSON)
            .bytes(&serde_json::to_vec(other).expect("entry payloads serialize")),
    };
    writer.bytes
}

pub fn decode_entry(bytes: &[u8]) -> Result<Entry, String> {
    let mut reader = ByteReader::new(bytes);
    let mut decode = || -> Result<Entry, crate::codec::DecodeError> {
        let term = reader.u64()?;
        let index = reader.u64()?;
        let payload = match reader.u8()? {
            PAYLOAD_NOOP => EntryPayload::Noop,
            PAYLOAD_COMMAND => EntryPayload::Command(reader.bytes()?.to_vec()),
            PAYLOAD_OTHER_JSON => serde_json::from_slice(reader.bytes()?)
                .map_err(|error| crate::codec::DecodeError(format!("entry payload: {error}")))?,
            tag => {
                return Err(crate::codec::DecodeError(format!(
                    "unknown entry payload tag {tag}"
                )))
            }
        };
        reader.finish()?;
        Ok(Entry {
            term,
            index,
            payload,
        })
    };
    decode().map_err(|error| error.to_string())
}

struct RecoveredLog {
    entries: Vec<Entry>,
    offsets: Vec<u64>,
    /// Index of `entries[0]` (1 for an empty log).
    first_index: LogIndex,
    /// The log does not lead to the snapshot: the file must be emptied.
    discard_all: bool,
    /// Bytes up to the end of the last intact record; anything after is a torn tail.
    valid_len: u64,
}

/// Parses log records. A damaged final record is a torn write and is dropped; damage before
/// the final record is corruption.
fn parse_log(bytes: &[u8]) -> Result<RecoveredLog, String> {
    let mut entries = Vec::new();
    let mut offsets = Vec::new();
    let mut position = 0usize;
    while position < bytes.len() {
        let remaining = bytes.len() - position;
        if remaining < RECORD_HEADER_BYTES {
            break; // torn header
        }
        let len =
            u32::from_le_bytes(bytes[position..position + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(
            bytes[position + 4..position + 8]
                .try_into()
                .expect("4 bytes"),
        );
        if len > MAX_RECORD_BYTES {
            return Err(format!("record at byte {position} claims {len} bytes"));
        }
        let end = position + RECORD_HEADER_BYTES + len;
        if end > bytes.len() {
            break; // torn body
        }
        let payload = &bytes[position + RECORD_HEADER_BYTES..end];
        if crc32(payload) != crc {
            if end == bytes.len() {
                break; // torn final record
            }
            return Err(format!(
                "checksum mismatch in the record at byte {position} (entry {})",
                entries.len() + 1
            ));
        }
        let entry =
            decode_entry(payload).map_err(|error| format!("record at byte {position}: {error}"))?;
        // After compaction the file starts at the entry following the snapshot.
        let expected_index = entries.first().map_or(entry.index.max(1), |first: &Entry| {
            first.index + entries.len() as LogIndex
        });
        if entry.index != expected_index {
            return Err(format!(
                "record at byte {position} holds entry {} where {expected_index} belongs",
                entry.index,
            ));
        }
        if let Some(previous) = entries.last().map(|previous: &Entry| previous.term) {
            if entry.term < previous {
                return Err(format!(
                    "entry {} has term {} after term {previous}",
                    entry.index, entry.term
                ));
            }
        }
        offsets.push(position as u64);
        entries.push(entry);
        position = end;
    }
    Ok(RecoveredLog {
        first_index: entries.first().map_or(1, |entry| entry.index),
        entries,
        offsets,
        valid_len: position as u64,
        discard_all: false,
    })
}

/// Keeps the stored entries that follow `snapshot`: none when the log does not hold the
/// snapshot's last entry (or start right after it); a log that starts beyond it has a gap.
fn after_snapshot(
    mut log: RecoveredLog,
    snapshot: Option<&SnapshotMeta>,
) -> Result<RecoveredLog, String> {
    let Some(meta) = snapshot else {
        if log.first_index != 1 {
            return Err(format!(
                "the log starts at entry {} but there is no snapshot",
                log.first_index
            ));
        }
        return Ok(log);
    };
    if log.entries.is_empty() {
        log.first_index = meta.index + 1;
        return Ok(log);
    }
    if log.first_index > meta.index + 1 {
        return Err(format!(
            "the log starts at entry {} after a snapshot ending at {}",
            log.first_index, meta.index
        ));
    }
    let position = (meta.index + 1 - log.first_index) as usize;
    let leads_to_snapshot = position == 0
        || log
            .entries
            .get(position - 1)
            .is_some_and(|entry| entry.term == meta.term);
    if !leads_to_snapshot {
        log.entries.clear();
        log.offsets.clear();
        log.discard_all = true;
    } else {
        log.entries.drain(..position.min(log.entries.len()));
        log.offsets.drain(..position.min(log.offsets.len()));
    }
    log.first_index = meta.index + 1;
    Ok(log)
}

/// Snapshot file: `[crc32 u32][index u64][term u64][voters count u64][voter u64]*[learners count u64][learner u64]*[data]`.
fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut writer = ByteWriter::default();
    writer.u64(snapshot.meta.index).u64(snapshot.meta.term);
    writer.u64(snapshot.meta.voters.len() as u64);
    for voter in &snapshot.meta.voters {
        writer.u64(*voter);
    }
    writer.u64(snapshot.meta.learners.len() as u64);
    for learner in &snapshot.meta.learners {
        writer.u64(*learner);
    }
    writer.bytes(&snapshot.data);
    seal(&writer.bytes)
}

fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, String> {
    let body = unseal(bytes, "snapshot")?;
    let mut reader = ByteReader::new(body);
    let mut decode = || -> Result<Snapshot, crate::codec::DecodeError> {
        let index = reader.u64()?;
        let term = reader.u64()?;
        let voters_count = reader.u64()?;
        if voters_count > body.len() as u64 / 8 {
            return Err(crate::codec::DecodeError(format!(
                "snapshot claims {voters_count} voters"
            )));
        }
        let voters = (0..voters_count)
            .map(|_| reader.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let learners_count = reader.u64()?;
        if learners_count > body.len() as u64 / 8 {
            return Err(crate::codec::DecodeError(format!(
                "snapshot claims {learners_count} learners"
            )));
        }
        let learners = (0..learners_count)
            .map(|_| reader.u64())
            .collect::<Result<Vec<_>, _>>()?;
        let data = reader.bytes()?.to_vec();
        reader.finish()?;
        Ok(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                voters,
                learners,
            },
            data,
        })
    };
    let snapshot = decode().map_err(|error| error.to_string())?;
    if snapshot.meta.index == 0 {
        return Err("snapshot at index 0".into());
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::{Arc, Mutex};

    /// Runs a storage future to completion outside any simulation (real files).
    trait Wait: Future + Sized {
        fn wait(self) -> Self::Output {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime")
                .block_on(self)
        }
    }

    impl<F: Future> Wait for F {}

    fn entry(term: u64, index: u64, tag: u8) -> Entry {
        Entry {
            term,
            index,
            payload: EntryPayload::Command(vec![tag; 5]),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("minos-storage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn recovers_hard_state_and_log_after_reopen() {
        let dir = temp_dir("reopen");
        let (mut storage, recovered) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        assert_eq!(
            recovered.hard_state,
            HardState {
                term: 0,
                voted_for: None
            }
        );
        assert!(recovered.entries.is_empty());
        let entries = vec![
            entry(1, 1, 1),
            entry(1, 2, 2),
            Entry {
                term: 2,
                index: 3,
                payload: EntryPayload::Noop,
            },
        ];
        storage
            .persist(
                Some(&HardState {
                    term: 2,
                    voted_for: Some(3),
                }),
                &entries,
            )
            .wait()
            .unwrap();
        drop(storage);
        let (storage, recovered) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        assert_eq!(
            recovered.hard_state,
            HardState {
                term: 2,
                voted_for: Some(3)
            }
        );
        assert_eq!(recovered.entries, entries);
        assert_eq!(storage.last_index(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_conflicting_append_replaces_the_suffix() {
        let dir = temp_dir("conflict");
        let (mut storage, _) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        storage
            .persist(None, &[entry(1, 1, 1), entry(1, 2, 2), entry(1, 3, 3)])
            .wait()
            .unwrap();
        storage.persist(None, &[entry(2, 2, 9)]).wait().unwrap();
        storage.persist(None, &[entry(2, 3, 10)]).wait().unwrap();
        drop(storage);
        let (_, recovered) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        assert_eq!(
            recovered.entries,
            vec![entry(1, 1, 1), entry(2, 2, 9), entry(2, 3, 10)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_record_is_discarded_and_the_log_stays_appendable() {
        let dir = temp_dir("torn");
        let (mut storage, _) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        storage
            .persist(None, &[entry(1, 1, 1), entry(1, 2, 2)])
            .wait()
            .unwrap();
        drop(storage);
        let log_path = dir.join(LOG_FILE);
        let full = std::fs::read(&log_path).unwrap();
        for cut in [full.len() - 1, full.len() - 6, full.len() - 14] {
            std::fs::write(&log_path, &full[..cut]).unwrap();
            let (mut storage, recovered) =
                Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
            assert_eq!(recovered.entries, vec![entry(1, 1, 1)], "cut at {cut}");
            storage.persist(None, &[entry(1, 2, 7)]).wait().unwrap();
            drop(storage);
            let (_, recovered) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
            assert_eq!(recovered.entries, vec![entry(1, 1, 1), entry(1, 2, 7)]);
        }
        // A garbled (not shortened) final record is also a torn write.
        let mut garbled = std::fs::read(&log_path).unwrap();
        let last = garbled.len() - 1;
        garbled[last] ^= 0xff;
        std::fs::write(&log_path, &garbled).unwrap();
        let (_, recovered) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        assert_eq!(recovered.entries.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corruption_before_the_last_record_is_reported_not_repaired() {
        let dir = temp_dir("corrupt");
        let (mut storage, _) = Storage::open(RealDisk, &dir, Bugs::NONE).wait().unwrap();
        storage
            .persist(
                Some(&HardState {
                    term: 1,
                    voted_for: Some(1),
                }),
                &[entry(1, 1, 1), entry(1, 2, 2)],
            )
            .wait()
            .unwrap();
        drop(storage);
        let log_path = dir.join(LOG_FILE);
        let mut bytes = std::fs::read(&log_path).unwrap();
        bytes[RECORD_HEADER_BYTES + 2] ^= 0x01; // inside entry 1's payload
        std::fs::write(&log_path, &bytes).unwrap();
        let error = Storage::open(RealDisk, &dir, Bugs::NONE)
            .wait()
            .err()
            .expect("corruption must be detected");
        assert!(matches!(error, StorageError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        // The corrupt file was left as it was, for a human to look at.
        assert_eq!(std::fs::read(&log_path).unwrap(), bytes);

        let hard_state_path = dir.join(HARD_STATE_FILE);
        let mut hard_state = std::fs::read(&hard_state_path).unwrap();
        hard_state[6] ^= 0x10;
        std::fs::write(&hard_state_path, &hard_state).unwrap();
        let error = Storage::open(RealDisk, &dir, Bugs::NONE)
            .wait()
            .err()
            .expect("corruption must be detected");
        assert!(error.to_string().contains("hard state checksum"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn volatile_vote_bug_keeps_term_and_vote_in_memory_only() {
        let dir = temp_dir("volatile");
        let bugs = Bugs::NONE.with(Bug::VolatileVote);
        let (mut storage, _) = Storage::open(RealDisk, &dir, bugs).wait().unwrap();
        storage
            .persist(
                Some(&HardState {
                    term: 5,
                    voted_for: Some(2),
                }),
                &[],
            )
            .wait()
            .unwrap();
        assert_eq!(storage.hard_state().term, 5);
        drop(storage);
        let (_, recovered) = Storage::open(RealDisk, &dir, bugs).wait().unwrap();
        assert_eq!(
            recovered.hard_state,
            HardState {
                term: 0,
                voted_for: None
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Under turmoil, a crash loses exactly the writes that were not synced.
    #[test]
    fn simulated_crash_loses_unsynced_entries_only() {
        let mut sim = turmoil::Builder::new().build();
        // What each incarnation recovered, in order.
        let recoveries: Arc<Mutex<Vec<(HardState, usize)>>> = Arc::default();
        let seen = recoveries.clone();
        sim.host("n1", move || {
            let seen = seen.clone();
            async move {
                let dir = Path::new("/data");
                let (mut storage, recovered) = Storage::open(SimDisk, dir, Bugs::NONE).await?;
                let first = recovered.entries.is_empty();
                seen.lock()
                    .unwrap()
                    .push((recovered.hard_state.clone(), recovered.entries.len()));
                if first {
                    storage
                        .persist(
                            Some(&HardState {
                                term: 3,
                                voted_for: Some(1),
                            }),
                            &[entry(3, 1, 1), entry(3, 2, 2)],
                        )
                        .await?;
                    // Written but never synced: must not survive the crash.
                    storage.append(&[entry(3, 3, 3)])?;
                }
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        while recoveries.lock().unwrap().is_empty() {
            sim.step().unwrap();
        }
        sim.step().unwrap();
        sim.crash("n1");
        sim.bounce("n1");
        while recoveries.lock().unwrap().len() < 2 {
            sim.step().unwrap();
        }
        let recoveries = recoveries.lock().unwrap();
        assert_eq!(
            recoveries[0],
            (
                HardState {
                    term: 0,
                    voted_for: None
                },
                0
            )
        );
        assert_eq!(
            recoveries[1],
            (
                HardState {
                    term: 3,
                    voted_for: Some(1)
                },
                2
            )
        );
    }
}
