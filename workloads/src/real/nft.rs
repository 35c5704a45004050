//! Network faults between real nodes as one nftables table of the bridge family: packets the
//! bridge forwards from node A to node B are dropped (partitions) or dropped with a
//! probability (`numgen random mod 100 < N`). Every change replaces the whole table in one
//! `nft -f` transaction, so a fault is never half-applied.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::guard::{Guard, PREFIX};
use super::netns::Network;
use super::sys::nft_script;

/// The faults in force, by directed node pair (sender, receiver).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Pairs cut by a two-way partition.
    pub partition: Vec<(usize, usize)>,
    /// Pairs cut by a one-way partition.
    pub oneway: Vec<(usize, usize)>,
    /// Per directed pair: percent of packets dropped.
    pub loss_percent: BTreeMap<(usize, usize), u8>,
}

impl Filter {
    /// The drop rules, merged: a pair cut outright needs no loss rule.
    fn rules(&self, network: &Network) -> Vec<String> {
        let mut cut: Vec<(usize, usize)> = self
            .partition
            .iter()
            .flat_map(|(a, b)| [(*a, *b), (*b, *a)])
            .chain(self.oneway.iter().copied())
            .collect();
        cut.sort_unstable();
        cut.dedup();
        let mut rules: Vec<String> = cut
            .iter()
            .map(|(from, to)| {
                format!(
                    "ip saddr {} ip daddr {} drop",
                    network.ip(*from),
                    network.ip(*to)
                )
            })
            .collect();
        for ((from, to), percent) in &self.loss_percent {
            if cut.binary_search(&(*from, *to)).is_ok() || *percent == 0 {
                continue;
            }
            rules.push(format!(
                "ip saddr {} ip daddr {} numgen random mod 100 < {percent} drop",
                network.ip(*from),
                network.ip(*to)
            ));
        }
        rules
    }
}

/// The run's nft table.
pub struct Firewall {
    table: String,
}

impl Firewall {
    /// Creates the (empty) table and registers it for cleanup.
    pub fn create(guard: &Guard) -> Result<Firewall, String> {
        let table = format!("{PREFIX}t{}", guard.tag());
        guard.set_nft_table(&table);
        let firewall = Firewall { table };
        firewall.script(&[])?;
        Ok(firewall)
    }

    fn script(&self, rules: &[String]) -> Result<(), String> {
        let table = &self.table;
        // "add" then "delete" makes the delete safe when the table does not exist yet; the
        // whole file is one transaction.
        let mut text = format!("add table bridge {table}\ndelete table bridge {table}\n");
        let _ = writeln!(text, "table bridge {table} {{");
        let _ = writeln!(text, "  chain forward_faults {{");
        let _ = writeln!(
            text,
            "    type filter hook forward priority 0; policy accept;"
        );
        for rule in rules {
            let _ = writeln!(text, "    {rule}");
        }
        text.push_str("  }\n}\n");
        nft_script(&text)
    }

    /// Makes `filter` the faults in force.
    pub fn apply(&self, network: &Network, filter: &Filter) -> Result<(), String> {
        self.script(&filter.rules(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cut_both_ways_for_partitions_and_skip_loss_on_cut_pairs() {
        let network = Network {
            bridge: "b".into(),
            host_ip: "10.0.0.1".parse().unwrap(),
            namespaces: vec!["a".into(), "b".into(), "c".into()],
            node_ips: vec![
                "10.0.0.11".parse().unwrap(),
                "10.0.0.12".parse().unwrap(),
                "10.0.0.13".parse().unwrap(),
            ],
        };
        let mut filter = Filter {
            partition: vec![(0, 1)],
            ..Filter::default()
        };
        filter.loss_percent.insert((0, 1), 20);
        filter.loss_percent.insert((2, 0), 50);
        let rules = filter.rules(&network);
        assert_eq!(
            rules,
            vec![
                "ip saddr 10.0.0.11 ip daddr 10.0.0.12 drop",
                "ip saddr 10.0.0.12 ip daddr 10.0.0.11 drop",
                "ip saddr 10.0.0.13 ip daddr 10.0.0.11 numgen random mod 100 < 50 drop",
            ]
        );
    }
}
