//! The real nemesis: applies schedule actions to real processes (SIGKILL and restart,
//! SIGSTOP/SIGCONT) and to the run's nftables table (partitions, one-way cuts, loss), tracks
//! what is in force so that everything heals at the end, and keeps the fault records that
//! results.json and the plots' bands show.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::cluster::Cluster;
use super::nft::{Filter, Firewall};
use super::Adapter;
use crate::nemesis::{Action, FaultRecord, LossDirection, Nemesis, PartitionShape};
use crate::options::FaultKind;
use crate::schedule::node_name;

/// Fault records for results.json and the plots' bands.
#[derive(Default)]
pub(super) struct FaultLog {
    pub(super) faults: Vec<FaultRecord>,
    open: BTreeMap<FaultKind, Vec<usize>>,
}

impl FaultLog {
    fn open(&mut self, kind: FaultKind, time_ns: u64, targets: Vec<String>, detail: Value) {
        self.faults.push(FaultRecord {
            kind,
            start_ns: time_ns,
            stop_ns: None,
            targets,
            detail,
        });
        self.open
            .entry(kind)
            .or_default()
            .push(self.faults.len() - 1);
    }

    /// Ends `kind` on `stopped` (None: everywhere); a record losing only some of its
    /// targets goes on as a new record over the rest.
    fn close(&mut self, kind: FaultKind, time_ns: u64, stopped: Option<&[String]>) {
        let mut still_open = Vec::new();
        for position in self.open.remove(&kind).unwrap_or_default() {
            let record = &self.faults[position];
            let remaining: Vec<String> = match stopped {
                None => Vec::new(),
                Some(stopped) => record
                    .targets
                    .iter()
                    .filter(|target| !stopped.contains(target))
                    .cloned()
                    .collect(),
            };
            if stopped.is_some() && remaining.len() == record.targets.len() {
                still_open.push(position);
                continue;
            }
            let detail = record.detail.clone();
            self.faults[position].stop_ns = Some(time_ns);
            if !remaining.is_empty() {
                self.faults.push(FaultRecord {
                    kind,
                    start_ns: time_ns,
                    stop_ns: None,
                    targets: remaining,
                    detail,
                });
                still_open.push(self.faults.len() - 1);
            }
        }
        if !still_open.is_empty() {
            self.open.insert(kind, still_open);
        }
    }
}

/// The real nemesis: what is in force, and how to apply an action to processes and rules.
pub(super) struct RealNemesis<'c, 'g, A: Adapter> {
    pub(super) cluster: &'c mut Cluster<'g>,
    pub(super) firewall: &'c Firewall,
    pub(super) adapter: &'c A,
    pub(super) filter: Filter,
    pub(super) killed: BTreeSet<usize>,
    pub(super) paused: BTreeSet<usize>,
    pub(super) log: FaultLog,
    /// The schedule as applied: real times, resolved targets.
    pub(super) applied: Vec<Value>,
    /// Generated schedules only: a `halves` partition is laid over the cluster as it is when
    /// the fault starts, with the leader on the smaller side (see [`leader_to_minority`]).
    pub(super) leader_aware_halves: bool,
}

fn names(nodes: impl IntoIterator<Item = usize>) -> Vec<String> {
    nodes.into_iter().map(node_name).collect()
}

impl<A: Adapter> RealNemesis<'_, '_, A> {
    async fn leader(&self) -> Option<usize> {
        let live: Vec<bool> = (0..self.cluster.nodes())
            .map(|node| self.cluster.is_live(node))
            .collect();
        self.adapter.leader(&self.cluster.network, &live).await
    }

    fn nodes(&self) -> usize {
        self.cluster.nodes()
    }

    /// Applies one action at `time_ns`; returns the history's nemesis `f` and `value`.
    pub(super) async fn apply(
        &mut self,
        kind: FaultKind,
        action: &Action,
        time_ns: u64,
    ) -> Result<(String, Value), String> {
        let start = format!("start-{}", kind.name());
        let stop = format!("stop-{}", kind.name());
        let no_leader = |f: String| {
            (
                f,
                json!({"targets": [], "mode": "leader", "note": "no leader known; nothing done"}),
            )
        };
        let nodes = self.nodes();
        match action {
            Action::StartPartition(shape) => {
                let leader = match shape {
                    PartitionShape::IsolateLeader => self.leader().await,
                    PartitionShape::Groups(_) if self.leader_aware_halves => self.leader().await,
                    _ => None,
                };
                let shape = match (shape, leader) {
                    (PartitionShape::Groups(groups), Some(leader)) if self.leader_aware_halves => {
                        PartitionShape::Groups(leader_to_minority(groups, leader))
                    }
                    _ => shape.clone(),
                };
                let (pairs, detail) = Nemesis::new(nodes).blocked_pairs(&shape, leader);
                self.filter.partition = pairs;
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                let targets = names(0..nodes);
                self.log.close(kind, time_ns, None);
                self.log.open(kind, time_ns, targets.clone(), detail.clone());
                Ok((start, with_targets(detail, &targets)))
            }
            Action::StopPartition | Action::StopOneway => {
                if kind == FaultKind::Partition {
                    self.filter.partition.clear();
                } else {
                    self.filter.oneway.clear();
                }
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                self.log.close(kind, time_ns, None);
                Ok((stop, json!({"targets": names(0..nodes)})))
            }
            Action::StartOneway { from, to } => {
                let pairs: Vec<(usize, usize)> = from
                    .iter()
                    .flat_map(|a| to.iter().filter(move |b| *b != a).map(move |b| (*a, *b)))
                    .collect();
                self.filter.oneway = pairs;
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                let detail = json!({"from": names(from.iter().copied()), "to": names(to.iter().copied())});
                let targets = names(from.iter().chain(to).copied().collect::<BTreeSet<_>>());
                self.log.close(kind, time_ns, None);
                self.log.open(kind, time_ns, targets.clone(), detail.clone());
                Ok((start, with_targets(detail, &targets)))
            }
            Action::StartOnewayToLeader => {
                let Some(leader) = self.leader().await else {
                    return Ok(no_leader(start));
                };
                let others: Vec<usize> = (0..nodes).filter(|n| *n != leader).collect();
                self.filter.oneway = others.iter().map(|other| (*other, leader)).collect();
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                let detail = json!({"mode": "to-leader", "from": names(others.iter().copied()), "to": [node_name(leader)]});
                let targets = names(0..nodes);
                self.log.close(kind, time_ns, None);
                self.log.open(kind, time_ns, targets.clone(), detail.clone());
                Ok((start, with_targets(detail, &targets)))
            }
            Action::Kill(requested) | Action::Pause(requested) => {
                let targets = if requested.is_empty() {
                    match self.leader().await {
                        Some(leader) => vec![leader],
                        None => return Ok(no_leader(start)),
                    }
                } else {
                    requested.clone()
                };
                let is_kill = matches!(action, Action::Kill(_));
                for node in &targets {
                    if is_kill {
                        self.cluster.kill(*node)?;
                        self.killed.insert(*node);
                        self.paused.remove(node);
                    } else if self.cluster.is_running(*node) {
                        self.cluster.pause(*node)?;
                        self.paused.insert(*node);
                    }
                }
                let detail = if requested.is_empty() {
                    json!({"mode": "leader"})
                } else {
                    json!({})
                };
                let targets = names(targets);
                self.log.open(kind, time_ns, targets.clone(), detail.clone());
                Ok((start, with_targets(detail, &targets)))
            }
            Action::Restart(requested) | Action::Resume(requested) => {
                let is_restart = matches!(action, Action::Restart(_));
                let set = if is_restart {
                    &self.killed
                } else {
                    &self.paused
                };
                let targets: Vec<usize> = if requested.is_empty() {
                    set.iter().copied().collect()
                } else {
                    requested
                        .iter()
                        .copied()
                        .filter(|node| set.contains(node))
                        .collect()
                };
                for node in &targets {
                    if is_restart {
                        self.cluster.start(*node)?;
                        self.killed.remove(node);
                    } else {
                        self.cluster.resume(*node)?;
                        self.paused.remove(node);
                    }
                }
                let targets = names(targets);
                if requested.is_empty() {
                    self.log.close(kind, time_ns, None);
                } else {
                    self.log.close(kind, time_ns, Some(&targets));
                }
                Ok((stop, json!({"targets": targets})))
            }
            Action::StartNet {
                targets,
                probability,
                direction,
                ..
            } if kind == FaultKind::Loss => {
                let percent = (probability * 100.0).round().clamp(0.0, 100.0) as u8;
                for target in targets {
                    for peer in (0..nodes).filter(|peer| peer != target) {
                        if matches!(direction, LossDirection::Out | LossDirection::Both) {
                            self.filter.loss_percent.insert((*target, peer), percent);
                        }
                        if matches!(direction, LossDirection::In | LossDirection::Both) {
                            self.filter.loss_percent.insert((peer, *target), percent);
                        }
                    }
                }
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                let direction = match direction {
                    LossDirection::Out => "out",
                    LossDirection::In => "in",
                    LossDirection::Both => "both",
                };
                let detail = json!({"probability": probability, "direction": direction});
                let targets = names(targets.iter().copied());
                self.log.open(kind, time_ns, targets.clone(), detail.clone());
                Ok((start, with_targets(detail, &targets)))
            }
            Action::StopNet { targets, .. } if kind == FaultKind::Loss => {
                let affected: Vec<usize> = if targets.is_empty() {
                    (0..nodes).collect()
                } else {
                    targets.clone()
                };
                // A loss rule belongs to its target whichever way it points.
                self.filter
                    .loss_percent
                    .retain(|(from, to), _| !(affected.contains(from) || affected.contains(to)));
                self.firewall.apply(&self.cluster.network, &self.filter)?;
                let targets = names(affected);
                if self.filter.loss_percent.is_empty() {
                    self.log.close(kind, time_ns, None);
                } else {
                    self.log.close(kind, time_ns, Some(&targets));
                }
                Ok((stop, json!({"targets": targets})))
            }
            other => Err(format!(
                "{other:?} cannot be applied to real processes (refused before the run; this is a bug)"
            )),
        }
    }

    /// The stop actions that heal everything in force, in a fixed order.
    pub(super) fn heal_all_actions(&self) -> Vec<(FaultKind, Action)> {
        let mut actions = Vec::new();
        if !self.filter.partition.is_empty() || self.log.open.contains_key(&FaultKind::Partition) {
            actions.push((FaultKind::Partition, Action::StopPartition));
        }
        if !self.filter.oneway.is_empty() || self.log.open.contains_key(&FaultKind::PartitionOneway)
        {
            actions.push((FaultKind::PartitionOneway, Action::StopOneway));
        }
        if !self.killed.is_empty() {
            actions.push((FaultKind::Kill, Action::Restart(Vec::new())));
        }
        if !self.paused.is_empty() {
            actions.push((FaultKind::Pause, Action::Resume(Vec::new())));
        }
        if !self.filter.loss_percent.is_empty() {
            actions.push((
                FaultKind::Loss,
                Action::StopNet {
                    kind: crate::nemesis::NetKind::Loss,
                    targets: Vec::new(),
                },
            ));
        }
        actions
    }
}

/// The groups of a generated `halves` partition with the current leader moved to the smallest
/// group (swapped with that group's first node; sizes unchanged). Random groups drawn before
/// the run leave a real leader on the majority side most of the time, where nothing changes
/// hands: the partition then tests nothing about failover. Cut to a minority, the leader must
/// step down while a new one is elected and clients can still reach it (clients talk to every
/// node; faults only cut node-to-node traffic): the case a leader-based system gets wrong.
/// Jepsen resolves its partition targets against the system's primaries for the same reason.
pub(super) fn leader_to_minority(groups: &[Vec<usize>], leader: usize) -> Vec<Vec<usize>> {
    let mut groups = groups.to_vec();
    let Some(smallest) = (0..groups.len())
        .filter(|g| !groups[*g].is_empty())
        .min_by_key(|g| groups[*g].len())
    else {
        return groups;
    };
    if groups[smallest].contains(&leader) {
        return groups;
    }
    let Some(home) = groups.iter().position(|group| group.contains(&leader)) else {
        // The leader is in no group: it talks to everyone, and stays so.
        return groups;
    };
    let displaced = groups[smallest][0];
    groups[smallest][0] = leader;
    for node in groups[home].iter_mut() {
        if *node == leader {
            *node = displaced;
        }
    }
    for group in &mut groups {
        group.sort_unstable();
    }
    groups
}

fn with_targets(detail: Value, targets: &[String]) -> Value {
    let mut object = match detail {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    object.insert("targets".to_string(), json!(targets));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::leader_to_minority;

    #[test]
    fn the_leader_moves_to_the_smaller_group_and_sizes_stay() {
        assert_eq!(
            leader_to_minority(&[vec![0, 1, 2], vec![3, 4]], 1),
            vec![vec![0, 2, 3], vec![1, 4]]
        );
        // Already on the smaller side, or in no group: unchanged.
        assert_eq!(
            leader_to_minority(&[vec![0, 1, 2], vec![3, 4]], 4),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        assert_eq!(
            leader_to_minority(&[vec![0, 1], vec![2, 3]], 4),
            vec![vec![0, 1], vec![2, 3]]
        );
        assert_eq!(
            leader_to_minority(&[vec![2], vec![0, 1]], 0),
            vec![vec![0], vec![1, 2]]
        );
    }
}
