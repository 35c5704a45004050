//! Leadership transfer: bring the target up to date, then tell it to campaign at once
//! (TimeoutNow). Proposals are refused meanwhile; the transfer expires after one minimum
//! election timeout.

use super::{MessageBody, NodeId, NotLeader, RaftNode, Role};

#[derive(Clone, Debug)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    pub(crate) elapsed_ticks: u32,
}

impl RaftNode {
    /// Starts handing leadership to `to`. A no-op for ourselves or a non-voter.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        if to == self.config.id || !self.peers.contains(&to) {
            return Ok(());
        }
        if self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.to == to)
        {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            to,
            elapsed_ticks: 0,
        });
        let progress = self
            .progress
            .get_mut(&to)
            .expect("leader tracks every peer");
        if progress.match_index == self.log.last_index() {
            self.timeout_now_sent = true;
            self.send(to, self.term, MessageBody::TimeoutNow);
        } else {
            // Catch the target up now (resending from its match) rather than waiting for
            // the next heartbeat to notice a lost message.
            let next_index = progress.match_index + 1;
            progress.become_probe(next_index);
            self.append_flush_pending = true;
        }
        Ok(())
    }

    /// Called after `peer` acknowledged entries: if it is the transfer target and now holds
    /// our whole log, it can win an election at once.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let is_target = self
            .transfer
            .as_ref()
            .is_some_and(|transfer| transfer.to == peer);
        if is_target && self.progress[&peer].match_index == self.log.last_index() {
            self.timeout_now_sent = true;
            self.send(peer, self.term, MessageBody::TimeoutNow);
        }
    }
}
