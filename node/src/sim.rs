//! Running a node inside turmoil: simulated UDP and turmoil's simulated file system, so a
//! crash (`Sim::crash`/`bounce`) loses exactly the writes that were not synced.

use crate::control::NodeControl;
use crate::faults::FaultyDisk;
use crate::server::{self, NodeError, NodeOptions};
use crate::storage::{SimDisk, Storage, StorageError};
use crate::transport::Network;

/// Runs one node until it is crashed. Use inside `Sim::host`:
/// `sim.host("n1", move || minos_node::sim::run_node(options.clone(), control.clone()))`.
///
/// A storage failure (an injected disk fault, or corruption found at recovery) stops the
/// node the way a real process would stop, and so does a safety violation detected by the
/// core (fail-stop): the error is recorded in the observation
/// (`fatal_error`) and the host's software ends with `Ok`, so the simulation goes on and the
/// harness may restart the node with `Sim::bounce`.
pub async fn run_node(
    options: NodeOptions,
    control: NodeControl,
) -> Result<(), Box<dyn std::error::Error>> {
    let id = options.id;
    // The harness's disk faults act from outside the store, through this wrapper.
    let disk = FaultyDisk::new(SimDisk, control.disk_switch());
    let result = server::run(options, control.clone(), Network::Simulated, disk).await;
    match result {
        Ok(()) => {
            control.node_stopped(None);
            Ok(())
        }
        Err(NodeError::Storage(error)) => {
            tracing::error!(node = id, %error, "node stopped on a storage failure");
            control.node_stopped(Some(error.to_string()));
            Ok(())
        }
        // A fail-stop on a safety violation is a finding: the harness sees it in
        // `fatal_error` (NodeView::stopped_on_error), and the simulation goes on.
        Err(error @ NodeError::Safety(_)) => {
            tracing::error!(node = id, %error, "node stopped on a safety violation");
            control.node_stopped(Some(error.to_string()));
            Ok(())
        }
        Err(error) => {
            control.node_stopped(Some(error.to_string()));
            Err(error.into())
        }
    }
}

/// Empties a node's data directory durably, as a replaced drive would be: the next node
/// started on this host finds nothing. Call inside the host (e.g. before `run_node`).
pub fn wipe_storage(data_dir: &std::path::Path) -> Result<(), StorageError> {
    Storage::destroy(&SimDisk, data_dir)
}
