//! The sans-IO Raft core: a deterministic state machine. Messages and ticks go in; messages to
//! send, state and entries to persist, and committed entries to apply come out. No clocks, no
//! sockets, no files: the shell (`crate::server`) maps it onto turmoil or real IO.
//!
//! One file per concern: `log` (entries, terms, conflicts, compaction), `election` (votes,
//! PreVote, roles), `replication` (AppendEntries, heartbeats, commit), `progress`
//! (per-follower state), `read_index` (linearizable reads), `transfer` (leadership transfer),
//! `snapshot` (compaction, chunked InstallSnapshot), `membership` (single-server changes,
//! learners), `message` (the wire vocabulary), `entry` (what is persisted), `config`, `rng`.
//!
//! Snapshots: the shell calls `compact(applied_index, state_bytes)`; the core forgets the log
//! behind it and sends the snapshot in chunks to followers that need compacted entries; a
//! follower hands an installed snapshot to the shell in `Ready::snapshot`. Membership: a
//! `ConfChange` entry takes effect when appended (`propose_conf_change`), one uncommitted
//! change at a time, and only once the leader committed an entry of its term.
//!
//! Durability contract: the shell takes a [`Ready`], persists `hard_state` and `entries`, then
//! sends `messages`, then applies `committed_entries`.
//!
//! Reads: `read_index` answers with a `ReadState` after a quorum heartbeat round, or at once
//! while the leader holds a lease (`Config::lease_reads`, off by default). A lease lasts the
//! minimum election timeout minus `lease_clock_drift_bound_ticks` from the sending of the
//! newest quorum-acknowledged heartbeat round, ends for good in a term once TimeoutNow was
//! sent, and relies on CheckQuorum's vote restraint (also honoured for one timeout after a
//! restart). It is sound only while clock rates differ by less than the drift bound.
//!
//! Planted bugs consulted here (each documented where it lives, with the incident it
//! imitates): `commit-old-term` (replication.rs, commit rule), `stale-term-append`
//! (election.rs, stale-term handling), `truncate-without-conflict` (replication.rs, follower
//! append), `vote-index-only` (election.rs, up-to-date check), `read-before-noop`
//! (read_index.rs), `lease-no-drift-bound` (read_index.rs), `no-prevote-checkquorum`
//! (config.rs), `membership-no-rule` (membership.rs); planted for issue 12, with no bespoke
//! schedule: `follower-commit-past-new`, `ack-last-index`, `append-skips-prev-term`,
//! `match-from-next-index`, `commit-median-even` (replication.rs), `reply-term-unchecked`
//! and `restart-commits-whole-log` (here), `stale-vote-counted` (election.rs),
//! `read-quorum-off-by-one` (read_index.rs), `snapshot-skip-by-index` (snapshot.rs); the
//! store's `snapshot-no-sessions` and `dedup-last-only` live in `crate::store`. With a
//! log-rewriting bug on, the
//! guards on committed entries stand down so that the harness, not an assertion, sees the
//! damage; `tests::planted_bugs` shows the safety checker catching each one.
//!
//! One deliberate exception to "match indexes never move backward": a follower that proves,
//! probe after probe, that its durable log lost entries it acknowledged (a disk fault or the
//! shell's `ack-before-fsync` bug) has its match index lowered so that it can be repaired.
//! A stale, duplicated or reordered response never lowers it.

mod config;
mod election;
mod entry;
mod log;
mod membership;
mod message;
mod progress;
mod read_index;
mod replication;
mod rng;
mod snapshot;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bugs::Bug;
pub use config::Config;
pub use entry::{
    ConfChange, ConfChangeKind, Entry, EntryPayload, HardState, RecoveredState, Snapshot,
    SnapshotMeta,
};
pub use membership::{ConfChangeError, Membership};
pub use message::{AppendOutcome, Message, MessageBody};

use log::RaftLog;
use progress::Progress;
use read_index::ReadQueue;
use rng::SplitMix64;
use transfer::Transfer;

pub type NodeId = u64;
pub type Term = u64;
pub type LogIndex = u64;

/// No real cluster reaches this term (2^48 elections): a message claiming a higher one is
/// refused, never adopted or persisted, so `term + 1` can never overflow.
pub const MAX_TERM: Term = 1 << 48;
/// A message may raise our term by at most this much at once. Terms move by one per election
/// round; a jump of 2^32 rounds is a forgery or corruption, not a long partition.
pub const MAX_TERM_JUMP: Term = 1 << 32;
/// No real log reaches this index; larger indexes in a message are refused, so index
/// arithmetic (`index + count`, `index + 1`) cannot overflow.
pub const MAX_INDEX: LogIndex = 1 << 48;

/// An input that contradicts what this node knows to be committed, or another state a
/// correct cluster never reaches: evidence of a safety bug somewhere. The core stops taking
/// input; the shell stops the node (fail-stop) with this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyViolation(pub String);

impl std::fmt::Display for SafetyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SafetyViolation {}

/// A linearizable read may be served once the state machine has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub request_id: u64,
    pub index: LogIndex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// For observability and for the shell's routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: LogIndex,
    /// Term of the entry at `commit_index` (None when this node cannot tell: compacted away,
    /// or nothing committed yet).
    pub commit_term: Option<Term>,
    pub last_index: LogIndex,
    pub applied_index: LogIndex,
    pub voted_for: Option<NodeId>,
    /// Target of a leadership transfer in progress (leader only).
    pub transferring_to: Option<NodeId>,
    /// Last index covered by the latest snapshot (0 without one).
    pub snapshot_index: LogIndex,
    /// Term of the entry at `snapshot_index` as the latest snapshot records it (the one
    /// persisted and sent to followers; 0 without one).
    pub snapshot_term: Term,
    /// The configuration in force.
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Index of the configuration entry in force (0: the initial configuration).
    pub config_index: LogIndex,
}

/// Refusal of a proposal or read: this node cannot serve it; try `leader_hint` if known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    pub leader_hint: Option<NodeId>,
}

impl std::fmt::Display for NotLeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.leader_hint {
            Some(leader) => write!(f, "not the leader; try node {leader}"),
            None => f.write_str("not the leader; leader unknown"),
        }
    }
}

impl std::error::Error for NotLeader {}

/// Work for the shell, in this order: persist `snapshot` (and restore the state machine from
/// it), persist `hard_state` and `entries` (durably), send `messages`, apply
/// `committed_entries`, answer `read_states` once applied far enough.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// A snapshot installed from the leader: it replaces the whole stored log (entries in
    /// this Ready follow it) and the state machine, before anything else is done.
    pub snapshot: Option<Snapshot>,
    /// Persist (fsync) before sending `messages`.
    pub hard_state: Option<HardState>,
    /// Append; the first replaces any stored entry at its index and the suffix after it.
    pub entries: Vec<Entry>,
    /// Send only after `hard_state` and `entries` are durable.
    pub messages: Vec<Message>,
    /// Apply in order, after persisting.
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    /// `read_index` requests abandoned because leadership was lost.
    pub dropped_read_requests: Vec<u64>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.dropped_read_requests.is_empty()
    }
}

/// One Raft node's protocol state. Deterministic: the same inputs give the same outputs.
#[derive(Debug)]
pub struct RaftNode {
    config: Config,
    /// Voters other than this node, sorted.
    peers: Vec<NodeId>,
    /// Learners other than this node, sorted.
    learners: Vec<NodeId>,
    /// The configuration in force: `base_membership` plus the log's configuration entries.
    membership: Membership,
    /// The configuration at the snapshot (or the bootstrap configuration).
    base_membership: Membership,
    /// Index of the latest configuration entry in the log (0: none after the snapshot).
    last_conf_index: LogIndex,
    term: Term,
    voted_for: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    rng: SplitMix64,
    /// Ticks since this core started: the clock leases are measured with.
    ticks_elapsed: u64,
    election_elapsed_ticks: u32,
    heartbeat_elapsed_ticks: u32,
    randomized_election_timeout_ticks: u32,
    /// Candidate and pre-candidate: answers received in the current round.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: one entry per peer.
    progress: BTreeMap<NodeId, Progress>,
    reads: ReadQueue,
    transfer: Option<Transfer>,
    /// Leader: a TimeoutNow went out this term. A delayed copy may still make its target
    /// campaign past the followers' leases, so this leadership holds no lease any more.
    timeout_now_sent: bool,
    /// The hard state last handed out in a `Ready` (what the shell holds durably).
    persisted_hard_state: HardState,
    /// Leader: new entries or acknowledgements may let more AppendEntries go out.
    append_flush_pending: bool,
    /// Leader: a ReadIndex round needs a heartbeat broadcast.
    read_heartbeat_pending: bool,
    messages: Vec<Message>,
    read_states: Vec<ReadState>,
    dropped_read_requests: Vec<u64>,
    /// The latest snapshot (taken by `compact` or installed), sent to followers that need
    /// compacted entries.
    snapshot: Option<Snapshot>,
    /// Follower: chunks of a leader's snapshot received so far.
    incoming_snapshot: Option<Snapshot>,
    /// Follower: a snapshot installed but not yet handed to the shell.
    installed_snapshot: Option<Snapshot>,
    /// Set once an input proved a safety violation; every later input is ignored.
    safety_violation: Option<SafetyViolation>,
    /// Messages refused for an impossible term or index (forged, corrupted or foreign).
    refused_messages: u64,
}

impl RaftNode {
    /// Panics on an invalid `config` or inconsistent `recovered` state: call
    /// `Config::validate` and `RecoveredState::validate` first to report them cleanly.
    pub fn new(config: Config, recovered: RecoveredState) -> RaftNode {
        if let Err(problem) = config.validate() {
            panic!("invalid raft config: {problem}");
        }
        if let Err(problem) = recovered.validate() {
            panic!("inconsistent recovered raft state: {problem}");
        }
        let mut peers: Vec<NodeId> = config
            .voters
            .iter()
            .copied()
            .filter(|&v| v != config.id)
            .collect();
        peers.sort_unstable();
        let rng = SplitMix64::for_node(config.seed, config.id);
        let hard_state = recovered.hard_state.clone();
        // Entries of a newer term than the stored hard state: the crash fell between writing
        // entries and writing the hard state (or the hard state was lost). The node was at
        // least in that term; a vote it may have cast there was never sent, so none is kept.
        let (snapshot_index, snapshot_term) = recovered
            .snapshot
            .as_ref()
            .map_or((0, 0), |snapshot| (snapshot.meta.index, snapshot.meta.term));
        let last_log_term = recovered
            .entries
            .last()
            .map_or(snapshot_term, |entry| entry.term);
        let (term, voted_for) = if last_log_term > hard_state.term {
            (last_log_term, None)
        } else {
            (hard_state.term, hard_state.voted_for)
        };
        let base_membership = match &recovered.snapshot {
            Some(snapshot) => Membership {
                voters: snapshot.meta.voters.iter().copied().collect(),
                learners: snapshot.meta.learners.iter().copied().collect(),
            },
            None => Membership {
                voters: config.voters.iter().copied().collect(),
                learners: Default::default(),
            },
        };
        let mut node = RaftNode {
            peers,
            learners: Vec::new(),
            membership: Membership::default(),
            base_membership,
            last_conf_index: 0,
            term,
            voted_for,
            role: Role::Follower,
            leader: None,
            log: RaftLog::recover_after_snapshot(
                snapshot_index,
                snapshot_term,
                recovered.entries,
                recovered.applied_index,
            ),
            rng,
            ticks_elapsed: 0,
            election_elapsed_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            randomized_election_timeout_ticks: config.election_timeout_min_ticks,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            reads: ReadQueue::default(),
            transfer: None,
            timeout_now_sent: false,
            persisted_hard_state: hard_state,
            append_flush_pending: false,
            read_heartbeat_pending: false,
            messages: Vec::new(),
            read_states: Vec::new(),
            dropped_read_requests: Vec::new(),
            snapshot: recovered.snapshot,
            incoming_snapshot: None,
            installed_snapshot: None,
            safety_violation: None,
            refused_messages: 0,
            config,
        };
        node.refresh_membership();
        node.reset_randomized_election_timeout();
        // PLANTED BUG `restart-commits-whole-log`: the commit index is volatile, and a
        // restarted node takes everything it persisted as committed ("it was on disk, so it
        // was acknowledged") and applies it, uncommitted suffix included. Imitates recovery
        // code that confuses the durable log with the committed log.
        if node.config.bugs.has(Bug::RestartCommitsWholeLog) {
            let last_index = node.log.last_index();
            node.log.commit_to(last_index, true);
        }
        node
    }

    /// One unit of logical time (10 ms in the shell).
    pub fn tick(&mut self) {
        self.ticks_elapsed += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            // Saturating: a node that never campaigns keeps counting, so that its lease on
            // votes (CheckQuorum) still expires when the leader goes quiet.
            self.election_elapsed_ticks = self.election_elapsed_ticks.saturating_add(1);
            // Learners and non-members never campaign.
            if self.election_elapsed_ticks >= self.randomized_election_timeout_ticks
                && self.may_campaign()
            {
                self.election_elapsed_ticks = 0;
                self.start_election();
            }
        }
        self.check_invariants();
    }

    /// Handles one message from a peer. Messages not addressed to us, or answers from
    /// non-members, are dropped (the network may misdeliver; that must not corrupt state).
    pub fn step(&mut self, message: Message) {
        if self.safety_violation.is_some() {
            return;
        }
        if message.to != self.config.id
            || message.from == self.config.id
            || !self.accepts_from(&message)
        {
            return;
        }
        if !message.is_well_formed() || !self.is_plausible_term(message.term) {
            self.refused_messages += 1;
            return;
        }
        // PLANTED BUG `reply-term-unchecked`: the leader checks the term of requests but not
        // of replies, so an answer from a node already in a newer term is counted as if it
        // were of this term instead of deposing the leader: heartbeat answers keep it in
        // CheckQuorum and confirm its ReadIndex rounds while another leader commits (Raft
        // figure 2, "all servers" rule 2, applied to requests only).
        let reply_counted_anyway = self.config.bugs.has(Bug::ReplyTermUnchecked)
            && self.role == Role::Leader
            && matches!(
                message.body,
                MessageBody::AppendEntriesResponse { .. } | MessageBody::HeartbeatResponse { .. }
            );
        if message.term > self.term && !reply_counted_anyway {
            if !self.adopt_higher_term(&message) {
                return;
            }
        } else if message.term < self.term {
            self.handle_stale_term(message);
            self.check_invariants();
            return;
        }
        match message.body {
            MessageBody::RequestVote { .. } => self.handle_request_vote(message),
            MessageBody::RequestVoteResponse { .. } => self.handle_request_vote_response(message),
            MessageBody::AppendEntries { .. } => self.handle_append_entries(message),
            MessageBody::AppendEntriesResponse { .. } => {
                self.handle_append_entries_response(message)
            }
            MessageBody::Heartbeat { .. } => self.handle_heartbeat(message),
            MessageBody::HeartbeatResponse { .. } => self.handle_heartbeat_response(message),
            MessageBody::TimeoutNow => self.handle_timeout_now(message),
            MessageBody::InstallSnapshot { .. } => self.handle_install_snapshot(message),
            MessageBody::InstallSnapshotResponse { .. } => {
                self.handle_install_snapshot_response(message)
            }
        }
        self.check_invariants();
    }

    /// A term we may adopt: at most `MAX_TERM`, and not more than `MAX_TERM_JUMP` above ours.
    fn is_plausible_term(&self, term: Term) -> bool {
        term <= MAX_TERM && term <= self.term.saturating_add(MAX_TERM_JUMP)
    }

    /// Set once an input contradicted committed state; the node must stop (fail-stop).
    pub fn safety_violation(&self) -> Option<&SafetyViolation> {
        self.safety_violation.as_ref()
    }

    /// Messages refused so far for an impossible term or index.
    pub fn refused_messages(&self) -> u64 {
        self.refused_messages
    }

    /// Records the first safety violation; the core ignores every input after it.
    fn fail_stop(&mut self, problem: String) {
        if self.safety_violation.is_none() {
            self.safety_violation = Some(SafetyViolation(problem));
        }
    }

    /// Requests are heard from anyone: the configuration in our log may be uncommitted and
    /// about to be overwritten by a leader it does not list (and a removed node's votes are
    /// held off by the leader lease). Answers count only from members: votes from voters,
    /// replication answers from voters and learners.
    fn accepts_from(&self, message: &Message) -> bool {
        let node = message.from;
        match message.body {
            MessageBody::RequestVoteResponse { .. } => self.peers.contains(&node),
            MessageBody::AppendEntriesResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. } => {
                self.peers.contains(&node) || self.learners.contains(&node)
            }
            // Only a leader we count as a voter may make us campaign at once.
            MessageBody::TimeoutNow => self.peers.contains(&node),
            MessageBody::RequestVote { .. }
            | MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => true,
        }
    }

    /// Appends a command (leader only). The returned (term, index) identifies the entry: it is
    /// committed iff the entry applied at `index` has this `term`.
    pub fn propose(&mut self, payload: Vec<u8>) -> Result<(Term, LogIndex), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        if let Some(transfer) = &self.transfer {
            // New entries would only delay the target catching up; the client retries there.
            return Err(NotLeader {
                leader_hint: Some(transfer.to),
            });
        }
        let index = self.append_entry(EntryPayload::Command(payload));
        self.check_invariants();
        Ok((self.term, index))
    }

    pub fn has_ready(&self) -> bool {
        self.current_hard_state() != self.persisted_hard_state
            || self.installed_snapshot.is_some()
            || self.log.has_unstable()
            || !self.messages.is_empty()
            || self.log.has_committed_to_apply()
            || !self.read_states.is_empty()
            || !self.dropped_read_requests.is_empty()
            || self.append_flush_pending
            || self.read_heartbeat_pending
            || self
                .progress
                .values()
                .any(|progress| progress.needs_commit(self.log.committed()))
    }

    /// Returns the pending work and considers it handed over: the shell must persist, send
    /// and apply it as documented on [`Ready`].
    pub fn take_ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            self.flush_leader_messages();
        }
        let hard_state = self.current_hard_state();
        let hard_state = if hard_state != self.persisted_hard_state {
            self.persisted_hard_state = hard_state.clone();
            Some(hard_state)
        } else {
            None
        };
        let ready = Ready {
            snapshot: self.installed_snapshot.take(),
            hard_state,
            entries: self.log.take_unstable(),
            messages: std::mem::take(&mut self.messages),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
            dropped_read_requests: std::mem::take(&mut self.dropped_read_requests),
        };
        self.check_invariants();
        ready
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.log.committed(),
            commit_term: self.log.term(self.log.committed()),
            last_index: self.log.last_index(),
            applied_index: self.log.applied(),
            voted_for: self.voted_for,
            transferring_to: self.transfer.as_ref().map(|transfer| transfer.to),
            snapshot_index: self.log.snapshot_index(),
            // What the snapshot persisted and sent to followers says, not the log's own
            // record of the compaction point: the two must agree.
            snapshot_term: self
                .snapshot
                .as_ref()
                .filter(|snapshot| snapshot.meta.index == self.log.snapshot_index())
                .map_or(self.log.snapshot_term(), |snapshot| snapshot.meta.term),
            voters: self.membership.voters.iter().copied().collect(),
            learners: self.membership.learners.iter().copied().collect(),
            config_index: self.last_conf_index,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shell lost track of time (its process was stopped): a lease counted in ticks no
    /// longer bounds real time, so reads go through a quorum round until a new one is won.
    pub fn forget_lease(&mut self) {
        self.reads.forget_lease();
    }

    /// Reads answered on the lease alone since this node started.
    pub fn lease_reads(&self) -> u64 {
        self.reads.lease_reads
    }

    /// Term of the entry at `index`, if this node holds it (lets the shell match a proposal's
    /// (term, index) against what was applied).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term(index)
    }

    fn current_hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        debug_assert_ne!(to, self.config.id, "a node never messages itself");
        self.messages.push(Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    fn quorum(&self) -> usize {
        self.config.quorum()
    }

    /// An input that cannot occur in a correct cluster (e.g. two leaders in one term, which a
    /// shell-level planted bug that forgets votes can cause). The correct build fails-stop on
    /// it (`safety_violation`); with planted bugs on, the node drops the input and keeps
    /// running so that the harness, not a stop, reveals the damage. The caller drops the input.
    fn tolerate_impossible(&mut self, problem: impl FnOnce() -> String) {
        if self.config.bugs.is_empty() {
            self.fail_stop(format!("impossible input: {}", problem()));
        }
    }

    /// Invariants that hold after every input (TigerBeetle style: cheap, always on).
    fn check_invariants(&self) {
        let last_index = self.log.last_index();
        let snapshot_index = self
            .snapshot
            .as_ref()
            .map_or(0, |snapshot| snapshot.meta.index);
        assert_eq!(
            snapshot_index,
            self.log.snapshot_index(),
            "the kept snapshot ends where the log starts"
        );
        if !self.config.bugs_break_log_safety() {
            assert!(
                self.log.committed() <= last_index,
                "commit {} beyond last index {last_index}",
                self.log.committed()
            );
        }
        assert!(
            self.log.applied() <= self.log.committed(),
            "applied beyond commit"
        );
        assert!(
            self.log.last_term() <= self.term,
            "log holds a term above the current term"
        );
        assert!(
            self.persisted_hard_state.term <= self.term,
            "term went backward"
        );
        if self.persisted_hard_state.term == self.term
            && self.persisted_hard_state.voted_for.is_some()
        {
            assert_eq!(
                self.persisted_hard_state.voted_for, self.voted_for,
                "two votes in one term"
            );
        }
        match self.role {
            Role::Leader => {
                assert_eq!(
                    self.leader,
                    Some(self.config.id),
                    "a leader knows itself as leader"
                );
                assert_eq!(
                    self.voted_for,
                    Some(self.config.id),
                    "a leader voted for itself"
                );
                for (peer, progress) in &self.progress {
                    assert!(
                        progress.match_index <= last_index,
                        "match index {} of node {peer} beyond leader's last index {last_index}",
                        progress.match_index
                    );
                    assert!(
                        progress.next_index > progress.match_index,
                        "next index at or below match"
                    );
                }
            }
            Role::Candidate => assert_eq!(
                self.voted_for,
                Some(self.config.id),
                "a candidate voted for itself"
            ),
            Role::Follower | Role::PreCandidate => {
                assert!(
                    self.progress.is_empty() && self.transfer.is_none(),
                    "leader state off a leader"
                )
            }
        }
    }
}
