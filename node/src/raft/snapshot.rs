//! Snapshots and log compaction: the shell hands the core a snapshot of its state machine at
//! an applied index and the core forgets the log behind it; a leader whose follower needs
//! compacted entries sends its latest snapshot in chunks (one in flight, resumed from the
//! follower's confirmed offset); a follower whose log does not hold the snapshot's last entry
//! replaces its log with the snapshot and hands it to the shell in the next `Ready`.

use super::progress::ProgressState;
use super::{
    AppendOutcome, LogIndex, Message, MessageBody, NodeId, RaftNode, Role, Snapshot, SnapshotMeta,
};
use crate::bugs::Bug;

/// A follower drops a snapshot transfer that grows beyond this (a broken or hostile sender).
pub(crate) const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

impl RaftNode {
    /// Log compaction: `data` is the shell's state machine after applying every entry up to
    /// `index` (at most the applied index). The core keeps it to send to lagging followers,
    /// forgets the entries up to `index` and returns the snapshot for the shell to persist
    /// (durably, before it drops the same entries from its stored log).
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) -> Result<Snapshot, String> {
        if index > self.log.applied() {
            return Err(format!(
                "snapshot index {index} is beyond the applied index {}",
                self.log.applied()
            ));
        }
        if index <= self.log.snapshot_index() {
            return Err(format!(
                "snapshot index {index} is not after the current snapshot {}",
                self.log.snapshot_index()
            ));
        }
        let term = self
            .log
            .term(index)
            .ok_or_else(|| format!("no entry at index {index}"))?;
        let membership = self.membership_at(index);
        self.log.compact(index);
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                voters: membership.voters.iter().copied().collect(),
                learners: membership.learners.iter().copied().collect(),
            },
            data,
        };
        self.base_membership = membership;
        self.snapshot = Some(snapshot.clone());
        self.check_invariants();
        Ok(snapshot)
    }

    /// The latest snapshot's metadata (taken here or installed from a leader), if any.
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref().map(|snapshot| &snapshot.meta)
    }

    /// Entries held after the snapshot (what compaction keeps bounded).
    pub fn log_entries_count(&self) -> usize {
        self.log.entries_count()
    }

    /// Leader: the next chunk of the snapshot for `peer` (whose progress is in snapshot state
    /// or is switched to it here because its next entry is compacted).
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let snapshot = self
            .snapshot
            .as_ref()
            .expect("a compacted log has a snapshot");
        let meta = snapshot.meta.clone();
        let progress = self.progress.get_mut(&peer).expect("peer progress");
        if progress.state != (ProgressState::Snapshot { index: meta.index }) {
            progress.become_snapshot(meta.index);
        }
        if progress.probe_sent {
            return;
        }
        let length = snapshot.data.len();
        let offset = (progress.snapshot_offset as usize).min(length);
        let end = length.min(offset + self.config.snapshot_chunk_bytes);
        let data = snapshot.data[offset..end].to_vec();
        progress.probe_sent = true;
        let body = MessageBody::InstallSnapshot {
            meta,
            offset: offset as u64,
            data,
            done: end == length,
        };
        self.send(peer, self.term, body);
    }

    /// Follower side of InstallSnapshot (`message.term == self.term`).
    pub(super) fn handle_install_snapshot(&mut self, message: Message) {
        let MessageBody::InstallSnapshot {
            meta,
            offset,
            data,
            done,
        } = message.body
        else {
            unreachable!("dispatched on InstallSnapshot");
        };
        if self.role == Role::Leader {
            self.tolerate_impossible(|| format!("two leaders in term {}", message.term));
            return;
        }
        self.become_follower(self.term, Some(message.from));
        let index = meta.index;
        if index <= self.log.committed() {
            // Everything it covers is committed here already.
            self.incoming_snapshot = None;
            let outcome = AppendOutcome::Accepted { match_index: index };
            self.send(
                message.from,
                self.term,
                MessageBody::AppendEntriesResponse { outcome },
            );
            return;
        }
        if offset == 0 {
            self.incoming_snapshot = Some(Snapshot {
                meta: meta.clone(),
                data: Vec::new(),
            });
        }
        let received_bytes = match &mut self.incoming_snapshot {
            Some(incoming)
                if incoming.meta == meta
                    && incoming.data.len() as u64 == offset
                    && incoming.data.len() + data.len() <= MAX_SNAPSHOT_BYTES =>
            {
                incoming.data.extend_from_slice(&data);
                incoming.data.len() as u64
            }
            // A chunk out of order (lost, duplicated, reordered): say where to resume.
            Some(incoming) if incoming.meta == meta => incoming.data.len() as u64,
            _ => {
                self.incoming_snapshot = None;
                0
            }
        };
        if !done || self.incoming_snapshot.is_none() || received_bytes != offset + data.len() as u64
        {
            let body = MessageBody::InstallSnapshotResponse {
                index,
                received_bytes,
            };
            self.send(message.from, self.term, body);
            return;
        }
        let snapshot = self.incoming_snapshot.take().expect("checked above");
        let may_rewrite_committed = self.config.bugs_break_log_safety();
        // PLANTED BUG `snapshot-skip-by-index`: the follower keeps its log when it merely
        // reaches the snapshot's last index, without comparing that entry's term, and
        // commits it: a divergent suffix of an old term is committed and applied here in
        // place of the snapshot's state (Raft figure 13, rule 6, checks index and term).
        let holds_last_entry = if self.config.bugs.has(Bug::SnapshotSkipByIndex) {
            self.log.last_index() >= index
        } else {
            self.log.term(index) == Some(meta.term)
        };
        if holds_last_entry {
            // Our log already holds the snapshot's last entry, so the entries behind it match
            // the leader's and are committed: apply them instead of the snapshot.
            self.log.commit_to(index, may_rewrite_committed);
        } else {
            self.log.restore(index, meta.term);
            self.base_membership = super::Membership {
                voters: meta.voters.iter().copied().collect(),
                learners: meta.learners.iter().copied().collect(),
            };
            self.refresh_membership();
            self.snapshot = Some(snapshot.clone());
            self.installed_snapshot = Some(snapshot);
        }
        let outcome = AppendOutcome::Accepted { match_index: index };
        self.send(
            message.from,
            self.term,
            MessageBody::AppendEntriesResponse { outcome },
        );
    }

    /// Leader: the follower confirmed part of a snapshot transfer; send the next chunk.
    pub(super) fn handle_install_snapshot_response(&mut self, message: Message) {
        let MessageBody::InstallSnapshotResponse {
            index,
            received_bytes,
        } = message.body
        else {
            unreachable!("dispatched on InstallSnapshotResponse");
        };
        if self.role != Role::Leader {
            return;
        }
        let progress = self
            .progress
            .get_mut(&message.from)
            .expect("leader tracks every peer");
        progress.recent_active = true;
        if progress.state == (ProgressState::Snapshot { index }) {
            progress.snapshot_offset = received_bytes;
            progress.probe_sent = false;
            self.append_flush_pending = true;
        }
    }
}
