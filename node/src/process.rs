//! Running a node as a real process (`minos node`): real UDP sockets and real files.

use crate::control::NodeControl;
use crate::server::{self, NodeError, NodeOptions};
use crate::storage::RealDisk;
use crate::transport::Network;

/// Serves until a fatal error. Storage is in `options.data_dir`.
pub async fn run_node(options: NodeOptions) -> Result<(), NodeError> {
    let control = NodeControl::new(options.id, options.seed);
    server::run(options, control, Network::Real, RealDisk).await
}
