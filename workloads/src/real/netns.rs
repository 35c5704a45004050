//! The run's network: one bridge in the host namespace (it carries an address, so the
//! clients in `minos` itself reach every node), and per node a network namespace joined to
//! the bridge by a veth pair. Node-to-node traffic crosses the bridge, where the run's nft
//! table filters it (see `nft.rs`); client traffic goes bridge-to-host and is never filtered.
//! Names and the /24 subnet are unique per run, so parallel runs do not collide.

use std::net::Ipv4Addr;
use std::sync::Mutex;

use super::guard::{Guard, PREFIX};
use super::sys::run_tool;

/// Subnet choice and creation are serialised inside one process (parallel campaign runs).
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// The addresses and names of one run's network.
#[derive(Clone, Debug)]
pub struct Network {
    pub bridge: String,
    pub host_ip: Ipv4Addr,
    pub namespaces: Vec<String>,
    pub node_ips: Vec<Ipv4Addr>,
}

impl Network {
    pub fn namespace(&self, node: usize) -> &str {
        &self.namespaces[node]
    }

    pub fn ip(&self, node: usize) -> Ipv4Addr {
        self.node_ips[node]
    }

    /// Creates the bridge and `nodes` namespaces; every piece is registered with `guard`
    /// before the next one is made, so that a failure half-way leaves nothing behind.
    pub fn create(guard: &Guard, nodes: usize) -> Result<Network, String> {
        assert!((1..=9).contains(&nodes), "nodes is validated by RunOptions");
        let _lock = CREATE_LOCK
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let tag = guard.tag();
        let (second, third) = free_subnet(tag)?;
        let bridge = format!("{PREFIX}b{tag}");
        let host_ip = Ipv4Addr::new(10, second, third, 1);
        run_tool("ip", &["link", "add", &bridge, "type", "bridge"])?;
        guard.set_bridge(&bridge);
        run_tool(
            "ip",
            &["addr", "add", &format!("{host_ip}/24"), "dev", &bridge],
        )?;
        run_tool("ip", &["link", "set", &bridge, "up"])?;
        let mut namespaces = Vec::new();
        let mut node_ips = Vec::new();
        for node in 0..nodes {
            let namespace = format!("{PREFIX}-{tag}-n{}", node + 1);
            let veth = format!("{PREFIX}{tag}v{}", node + 1);
            let ip = Ipv4Addr::new(10, second, third, 11 + node as u8);
            run_tool("ip", &["netns", "add", &namespace])?;
            guard.add_namespace(&namespace);
            run_tool(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &namespace,
                ],
            )?;
            run_tool("ip", &["link", "set", &veth, "master", &bridge, "up"])?;
            let in_ns = |args: &[&str]| {
                let mut full = vec!["-n", namespace.as_str()];
                full.extend_from_slice(args);
                run_tool("ip", &full)
            };
            in_ns(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            in_ns(&["link", "set", "eth0", "up"])?;
            in_ns(&["link", "set", "lo", "up"])?;
            namespaces.push(namespace);
            node_ips.push(ip);
        }
        Ok(Network {
            bridge,
            host_ip,
            namespaces,
            node_ips,
        })
    }
}

/// A 10.x.y.0/24 not used by any address on the host, starting from a point derived from the
/// run tag (so that runs in different processes start apart).
fn free_subnet(tag: &str) -> Result<(u8, u8), String> {
    let in_use = run_tool("ip", &["-o", "-4", "addr", "show"])?;
    let start = tag.bytes().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    }) % 10_000;
    for offset in 0..10_000u32 {
        let slot = (start + offset) % 10_000;
        // 10.200.0.0 - 10.239.255.0: away from the usual 10.0/10.1 of home and cloud networks.
        let second = 200 + (slot / 250) as u8;
        let third = (slot % 250) as u8 + 1;
        let prefix = format!(" 10.{second}.{third}.");
        if !in_use.contains(&prefix) {
            return Ok((second, third));
        }
    }
    Err("no free 10.200-239.x.0/24 subnet for the run's bridge".to_string())
}
