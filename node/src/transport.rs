//! UDP datagrams on turmoil's simulated network or on real sockets, with one code path, and
//! the fault wrapper around them (`FaultyOutbox`): seeded loss, duplication, reordering and
//! delay of what the node sends, loss of what it receives, decided by a `faults::NetSwitch`
//! the harness turns; the event loop only sends and receives through it.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::time::{Duration, Instant};

use crate::auth::Sealer;
use crate::faults::{NetAction, NetSwitch};
use crate::protocol::{Wire, MAX_DATAGRAM_BYTES};

/// Which network the process lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// turmoil's simulated network (inside `Sim::host`/`Sim::client`).
    Simulated,
    /// Real UDP sockets.
    Real,
}

/// A bound UDP socket on either network.
pub enum Endpoint {
    Simulated(turmoil::net::UdpSocket),
    Real(tokio::net::UdpSocket),
}

impl Endpoint {
    /// Binds `port` on all interfaces (simulation) or on `ip` (real; loopback by default).
    pub async fn bind(network: Network, ip: Option<IpAddr>, port: u16) -> io::Result<Endpoint> {
        match network {
            Network::Simulated => {
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
                Ok(Endpoint::Simulated(
                    turmoil::net::UdpSocket::bind(addr).await?,
                ))
            }
            Network::Real => {
                let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port);
                Ok(Endpoint::Real(tokio::net::UdpSocket::bind(addr).await?))
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Endpoint::Simulated(socket) => socket.local_addr(),
            Endpoint::Real(socket) => socket.local_addr(),
        }
    }

    pub async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        match self {
            Endpoint::Simulated(socket) => socket.send_to(bytes, to).await.map(drop),
            Endpoint::Real(socket) => socket.send_to(bytes, to).await.map(drop),
        }
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Endpoint::Simulated(socket) => socket.recv_from(buf).await,
            Endpoint::Real(socket) => socket.recv_from(buf).await,
        }
    }

    /// A datagram that is already waiting, if any.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Endpoint::Simulated(socket) => socket.try_recv_from(buf),
            Endpoint::Real(socket) => socket.try_recv_from(buf),
        }
    }
}

/// Resolves "host:port": a turmoil host name in simulation, an IP address or name otherwise.
pub async fn resolve(network: Network, address: &str) -> io::Result<SocketAddr> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad address {address:?}, want host:port"),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    match network {
        Network::Simulated => {
            let ip = match host.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => turmoil::lookup(host),
            };
            Ok(SocketAddr::new(ip, port))
        }
        Network::Real => tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no address for {address:?}"),
                )
            }),
    }
}

/// Seals datagrams (see `crate::auth`) and sends and receives them through the node's seeded
/// network faults. Delayed datagrams wait in a queue ordered by (deadline, sequence) that the
/// owner flushes when it is due.
pub struct FaultyOutbox {
    faults: Option<NetSwitch>,
    sealer: Sealer,
    delayed: BTreeMap<(Instant, u64), (Vec<u8>, SocketAddr)>,
    delayed_seq: u64,
    pub sent_count: u64,
    pub dropped_count: u64,
}

impl FaultyOutbox {
    pub fn new(faults: Option<NetSwitch>, sealer: Sealer) -> Self {
        FaultyOutbox {
            faults,
            sealer,
            delayed: BTreeMap::new(),
            delayed_seq: 0,
            sent_count: 0,
            dropped_count: 0,
        }
    }

    /// Encodes and sends one message (subject to faults). Oversized datagrams are dropped
    /// with a warning: the sender's retry logic recovers, as from any loss.
    pub async fn send(&mut self, endpoint: &Endpoint, wire: &Wire, to: SocketAddr) {
        let bytes = wire.encode();
        if bytes.len() > MAX_DATAGRAM_BYTES {
            tracing::warn!(bytes = bytes.len(), "dropping an oversized datagram");
            self.dropped_count += 1;
            return;
        }
        let bytes = self.sealer.seal(&bytes);
        let action = self
            .faults
            .as_ref()
            .map_or(NetAction::Send { delay_ms: 0 }, NetSwitch::action);
        match action {
            NetAction::Send { delay_ms } => self.send_after(endpoint, bytes, to, delay_ms).await,
            NetAction::Drop => self.dropped_count += 1,
            NetAction::Duplicate {
                delay_ms,
                second_delay_ms,
            } => {
                self.send_after(endpoint, bytes.clone(), to, delay_ms).await;
                self.send_after(endpoint, bytes, to, second_delay_ms).await;
            }
        }
    }

    async fn send_after(
        &mut self,
        endpoint: &Endpoint,
        bytes: Vec<u8>,
        to: SocketAddr,
        delay_ms: u64,
    ) {
        if delay_ms == 0 {
            self.send_now(endpoint, &bytes, to).await;
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(delay_ms);
        self.delayed_seq += 1;
        self.delayed
            .insert((deadline, self.delayed_seq), (bytes, to));
    }

    /// Receives the next datagram that inbound loss lets through.
    pub async fn receive(
        &self,
        endpoint: &Endpoint,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        loop {
            let received = endpoint.recv_from(buf).await?;
            if !self.lose_inbound() {
                return Ok(received);
            }
        }
    }

    /// A datagram that is already waiting and that inbound loss lets through, if any.
    pub fn try_receive(
        &self,
        endpoint: &Endpoint,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        loop {
            let received = endpoint.try_recv_from(buf)?;
            if !self.lose_inbound() {
                return Ok(received);
            }
        }
    }

    fn lose_inbound(&self) -> bool {
        self.faults.as_ref().is_some_and(NetSwitch::drop_inbound)
    }

    async fn send_now(&mut self, endpoint: &Endpoint, bytes: &[u8], to: SocketAddr) {
        // UDP gives no delivery promise; a local send error is just another lost datagram.
        if let Err(error) = endpoint.send_to(bytes, to).await {
            tracing::debug!(%error, %to, "send failed");
            self.dropped_count += 1;
        } else {
            self.sent_count += 1;
        }
    }

    /// When the next delayed datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Sends every delayed datagram that is due.
    pub async fn flush_due(&mut self, endpoint: &Endpoint) {
        let now = Instant::now();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (bytes, to) = entry.remove();
            self.send_now(endpoint, &bytes, to).await;
        }
    }
}
