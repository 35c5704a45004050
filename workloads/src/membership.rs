//! The membership nemesis on the Raft store: the configuration the schedule wants (every node
//! but the removed ones, all voters), pursued the way an operator's script would: one
//! single-server change at a time, asked of whichever node leads, and asked again until that
//! leader's configuration shows it (a change lost with a deposed leader is asked of the next).
//! It also records the configurations the leaders reported, for results.json.
//!
//! A host whose disk is replaced (`rejoin-empty`) is retired under its old identity (removed
//! like a membership target) and, once it runs again, added under its new one. Identities of
//! host `h` (0-based) are `h + 1 + k * nodes`; names are `n<h+1>` for the first and
//! `n<h+1>/id<id>` for later ones.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::SmallRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};

use minos_node::raft::Role;
use minos_node::{NodeControl, NodeOptions};

use crate::schedule::node_name;
use crate::sut::ConfigurationChange;

const PORT: u16 = NodeOptions::DEFAULT_PORT;

pub(crate) struct MembershipGoal {
    nodes_count: usize,
    /// Nodes (0-based) that should not be members.
    removed: BTreeSet<usize>,
    /// Nodes down with a replaced disk: not members until they rejoin.
    retired: BTreeSet<usize>,
    /// The current identity of each node.
    ids: Vec<u64>,
    /// A membership fault has been applied: from then on every step compares.
    engaged: bool,
    /// Every configuration the leaders reported since then.
    seen: Vec<ConfigurationChange>,
    /// A restless operator (swarm `restless_membership`): until this simulated time, at a new
    /// leadership it may change its mind about which node to take out.
    restless: Option<Restless>,
    /// Node the schedule removed -> node taken out instead (a restless operator's choice).
    substitutes: BTreeMap<usize, usize>,
    /// The leader asked last, to notice a new leadership.
    last_leader: Option<usize>,
}

struct Restless {
    rng: SmallRng,
    until_ns: u64,
}

/// One single-server change asked of the leader (1-based node ids).
enum AdminChange {
    Add(u64),
    Remove(u64),
}

impl MembershipGoal {
    pub(crate) fn new(nodes_count: usize) -> MembershipGoal {
        MembershipGoal {
            nodes_count,
            removed: BTreeSet::new(),
            retired: BTreeSet::new(),
            ids: (1..=nodes_count as u64).collect(),
            engaged: false,
            seen: Vec::new(),
            restless: None,
            substitutes: BTreeMap::new(),
            last_leader: None,
        }
    }

    /// Until `until_ns`, when a new leader shows while a membership fault is in force, the
    /// goal moves half the time: another member goes out in place of one the schedule
    /// removed (the count out stays the schedule's). A change the deposed leader left
    /// uncommitted then meets a different change at the new leader, as when two operators,
    /// or one operator's retrying script, race a leader election; single-server changes are
    /// safe only if a new leader commits an entry of its term before it changes membership.
    pub(crate) fn make_restless(&mut self, seed: u64, until_ns: u64) {
        self.restless = Some(Restless {
            rng: SmallRng::seed_from_u64(seed),
            until_ns,
        });
    }

    pub(crate) fn remove(&mut self, node: usize) {
        assert!(node < self.nodes_count, "node {node} out of range");
        self.engaged = true;
        self.removed.insert(node);
    }

    pub(crate) fn add(&mut self, node: usize) {
        assert!(node < self.nodes_count, "node {node} out of range");
        self.engaged = true;
        self.removed.remove(&node);
        self.substitutes.remove(&node);
    }

    /// The nodes out of the configuration now: the schedule's, with a restless operator's
    /// substitutes in their place.
    fn out_now(&self) -> BTreeSet<usize> {
        self.removed
            .iter()
            .map(|node| *self.substitutes.get(node).unwrap_or(node))
            .collect()
    }

    /// At a new leadership, a restless operator may take out another member instead of one
    /// the schedule removed (or put the schedule's choice back).
    fn maybe_change_mind(&mut self, now_ns: u64, leader: usize) {
        let new_leadership = self.last_leader != Some(leader);
        self.last_leader = Some(leader);
        let out_now = self.out_now();
        let Some(restless) = self.restless.as_mut() else {
            return;
        };
        if !new_leadership || now_ns >= restless.until_ns || self.removed.is_empty() {
            return;
        }
        if !restless.rng.random_bool(0.5) {
            return;
        }
        let scheduled = *self
            .removed
            .iter()
            .choose(&mut restless.rng)
            .expect("removed is not empty");
        let candidates = (0..self.nodes_count)
            .filter(|node| !out_now.contains(node) && !self.retired.contains(node));
        match candidates.choose(&mut restless.rng) {
            Some(instead) if instead != scheduled => {
                self.substitutes.insert(scheduled, instead);
            }
            _ => {
                self.substitutes.remove(&scheduled);
            }
        }
    }

    /// The node lost its disk and will come back as `new_id`: its old identity leaves.
    pub(crate) fn retire(&mut self, node: usize, new_id: u64) {
        assert!(node < self.nodes_count, "node {node} out of range");
        assert_eq!(
            self.host_of(new_id),
            node,
            "identity {new_id} belongs to another host"
        );
        self.engaged = true;
        self.retired.insert(node);
        self.ids[node] = new_id;
    }

    /// The retired node runs again (under its new identity): add it.
    pub(crate) fn rejoin(&mut self, node: usize) {
        assert!(node < self.nodes_count, "node {node} out of range");
        self.engaged = true;
        self.retired.remove(&node);
    }

    fn host_of(&self, id: u64) -> usize {
        ((id - 1) % self.nodes_count as u64) as usize
    }

    fn id_name(&self, id: u64) -> String {
        let host = self.host_of(id);
        if id <= self.nodes_count as u64 {
            node_name(host)
        } else {
            format!("{}/id{id}", node_name(host))
        }
    }

    fn id_names(&self, ids: &BTreeSet<u64>) -> Vec<String> {
        ids.iter().map(|id| self.id_name(*id)).collect()
    }

    pub(crate) fn seen(&self) -> &[ConfigurationChange] {
        &self.seen
    }

    fn wanted_voters(&self) -> BTreeSet<u64> {
        let out_now = self.out_now();
        (0..self.nodes_count)
            .filter(|node| !out_now.contains(node) && !self.retired.contains(node))
            .map(|node| self.ids[node])
            .collect()
    }

    /// Records what the leader reports and asks it for the next change, if any.
    pub(crate) fn after_step(
        &mut self,
        controls: &[NodeControl],
        now_ns: u64,
        leader: Option<usize>,
    ) {
        let Some(leader) = leader.filter(|_| self.engaged) else {
            return;
        };
        self.maybe_change_mind(now_ns, leader);
        let Some((voters, learners)) = leader_configuration(&controls[leader]) else {
            return;
        };
        let change = ConfigurationChange {
            at_ns: now_ns,
            leader: node_name(leader),
            voters: self.id_names(&voters),
            learners: self.id_names(&learners),
        };
        let last = self.seen.last();
        if last
            .is_none_or(|last| (&last.voters, &last.learners) != (&change.voters, &change.learners))
        {
            self.seen.push(change);
        }
        let Some(request) = self.next_change(self.ids[leader], &voters, &learners) else {
            return;
        };
        for (node, control) in controls.iter().enumerate() {
            if node != leader {
                // A deposed or paused leader must not propose a stale request later.
                control.cancel_membership_request();
            }
        }
        // The request replaces any the leader has not taken yet and the node takes one per
        // tick, so asking on every step builds no backlog.
        let control = &controls[leader];
        match request {
            AdminChange::Add(id) => {
                let address = format!("n{}:{PORT}", self.host_of(id) + 1);
                control.request_add_member(id, address)
            }
            AdminChange::Remove(id) => control.request_remove_member(id),
        }
    }

    /// Grow before shrinking, as operators do, so that the cluster never drops below the
    /// smaller of the two configurations; remove retired identities (disks replaced: they
    /// never answer again) before live members, since taking a live member out while dead
    /// voters remain can leave the new configuration without a live quorum for good; remove
    /// the leader last, which costs an election.
    fn next_change(
        &self,
        leader_id: u64,
        voters: &BTreeSet<u64>,
        learners: &BTreeSet<u64>,
    ) -> Option<AdminChange> {
        let members: BTreeSet<u64> = voters.union(learners).copied().collect();
        let wanted = self.wanted_voters();
        if let Some(&missing) = wanted.difference(&members).next() {
            return Some(AdminChange::Add(missing));
        }
        let extras: Vec<u64> = members.difference(&wanted).copied().collect();
        let retired = extras.iter().copied().find(|id| !self.ids.contains(id));
        let follower = extras.iter().copied().find(|id| *id != leader_id);
        retired
            .or(follower)
            .or(extras.first().copied())
            .map(AdminChange::Remove)
    }

    /// Why the configuration at `leader` is not yet the wanted one with no learner left;
    /// None when it is, or when no membership fault was ever applied.
    pub(crate) fn unsettled(
        &self,
        controls: &[NodeControl],
        leader: Option<usize>,
    ) -> Option<String> {
        if !self.engaged {
            return None;
        }
        let Some((leader, (voters, learners))) =
            leader.and_then(|leader| Some((leader, leader_configuration(&controls[leader])?)))
        else {
            return Some("no leader".to_string());
        };
        let wanted = self.wanted_voters();
        if voters == wanted && learners.is_empty() {
            return None;
        }
        Some(format!(
            "leader {} has voters {:?} and learners {:?}; wanted voters {:?}",
            node_name(leader),
            self.id_names(&voters),
            self.id_names(&learners),
            self.id_names(&wanted)
        ))
    }
}

/// Voter and learner ids (1-based) of the node's configuration, if it leads.
fn leader_configuration(control: &NodeControl) -> Option<(BTreeSet<u64>, BTreeSet<u64>)> {
    let status = control.status();
    (status.role == Role::Leader).then(|| {
        (
            status.voters.iter().copied().collect(),
            status.learners.iter().copied().collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> BTreeSet<u64> {
        list.iter().copied().collect()
    }

    fn is_add(change: Option<AdminChange>, id: u64) -> bool {
        matches!(change, Some(AdminChange::Add(added)) if added == id)
    }

    fn is_remove(change: Option<AdminChange>, id: u64) -> bool {
        matches!(change, Some(AdminChange::Remove(removed)) if removed == id)
    }

    #[test]
    fn additions_come_first_and_the_leader_is_removed_last() {
        let mut goal = MembershipGoal::new(5);
        goal.remove(0);
        goal.remove(2);
        let everyone = ids(&[1, 2, 3, 4, 5]);
        // Leader n1 (id 1) is among those to remove: n3 goes first.
        assert!(is_remove(goal.next_change(1, &everyone, &ids(&[])), 3));
        assert!(is_remove(
            goal.next_change(1, &ids(&[1, 2, 4, 5]), &ids(&[])),
            1
        ));
        assert!(goal.next_change(2, &ids(&[2, 4, 5]), &ids(&[])).is_none());
        // Bringing n1 back while n5 goes: the addition first.
        goal.add(0);
        goal.add(2);
        goal.remove(4);
        assert!(is_add(goal.next_change(2, &ids(&[2, 4, 5]), &ids(&[])), 1));
        // A learner counts as a member: the next step is the next addition, then the removal.
        assert!(is_add(goal.next_change(2, &ids(&[2, 4, 5]), &ids(&[1])), 3));
        assert!(is_remove(
            goal.next_change(2, &ids(&[2, 4, 5]), &ids(&[1, 3])),
            5
        ));
    }

    #[test]
    fn a_restless_operator_takes_out_another_member_at_new_leaderships_until_its_deadline() {
        let mut goal = MembershipGoal::new(5);
        goal.make_restless(7, 1_000);
        goal.remove(1);
        let mut outs = BTreeSet::new();
        for step in 0..40u64 {
            // Every step a new leader (alternating), before the deadline.
            goal.maybe_change_mind(step, (step % 2) as usize);
            let wanted = goal.wanted_voters();
            assert_eq!(wanted.len(), 4, "one node out, as scheduled");
            outs.insert(
                ids(&[1, 2, 3, 4, 5])
                    .difference(&wanted)
                    .copied()
                    .next()
                    .unwrap(),
            );
        }
        assert!(outs.len() > 1, "the goal moved: {outs:?}");
        // The same leader again changes nothing.
        let before = goal.wanted_voters();
        goal.maybe_change_mind(41, 1);
        goal.maybe_change_mind(42, 1);
        assert_eq!(goal.wanted_voters(), before);
        // Past the deadline the goal stays put, and the schedule's add brings everyone back.
        for step in 0..20u64 {
            goal.maybe_change_mind(1_000 + step, (step % 2) as usize);
            assert_eq!(goal.wanted_voters(), before);
        }
        goal.add(1);
        assert_eq!(goal.wanted_voters(), ids(&[1, 2, 3, 4, 5]));
    }

    #[test]
    fn a_replaced_disk_retires_the_old_identity_and_adds_the_new_one() {
        let mut goal = MembershipGoal::new(3);
        goal.retire(1, 5);
        let everyone = ids(&[1, 2, 3]);
        // While n2 is down with its new disk: its old identity leaves.
        assert!(is_remove(goal.next_change(1, &everyone, &ids(&[])), 2));
        assert!(goal.next_change(1, &ids(&[1, 3]), &ids(&[])).is_none());
        // Back as id 5: added (as a learner, promoted by the leader once caught up).
        goal.rejoin(1);
        assert!(is_add(goal.next_change(1, &ids(&[1, 3]), &ids(&[])), 5));
        assert!(goal.next_change(1, &ids(&[1, 3, 5]), &ids(&[])).is_none());
        assert_eq!(goal.id_name(5), "n2/id5");
        assert_eq!(goal.id_name(3), "n3");
        assert_eq!(goal.wanted_voters(), ids(&[1, 3, 5]));
    }

    #[test]
    fn retired_identities_leave_before_live_members() {
        // Seed 662 of the correct build: n1 and n2 got empty disks, then n3 was taken out
        // first, leaving voters {n4, n5, old n1, old n2}: two live of four, no quorum ever.
        let mut goal = MembershipGoal::new(5);
        for (host, id) in [(0, 6), (1, 7)] {
            goal.retire(host, id);
            goal.rejoin(host);
        }
        // Second replacements: the identities leaving (6, 7) sort after n3's (3).
        goal.retire(0, 11);
        goal.retire(1, 12);
        goal.remove(2);
        let voters = ids(&[3, 4, 5, 6, 7]);
        assert!(is_remove(goal.next_change(4, &voters, &ids(&[])), 6));
        assert!(is_remove(
            goal.next_change(4, &ids(&[3, 4, 5, 7]), &ids(&[])),
            7
        ));
        assert!(is_remove(
            goal.next_change(4, &ids(&[3, 4, 5]), &ids(&[])),
            3
        ));
    }
}
