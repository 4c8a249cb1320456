//! gRPC statuses shared by the cohortd.v1 methods (`cohortd_v1.rs`, `track.rs`):
//! nothing loaded yet, and an unknown or draft key with a "did you mean" hint.

use std::sync::Arc;

use tonic::Status;

use crate::engine::EvalError;
use crate::state::AppState;
use crate::Snapshot;

/// The serving snapshot, or UNAVAILABLE with the reason nothing is loaded.
pub fn snapshot_or_unavailable(state: &AppState) -> Result<Arc<Snapshot>, Status> {
    state.store.load().ok_or_else(|| {
        let why = state
            .store
            .status()
            .last_error
            .map(|e| format!(": the last reload failed: {e}"))
            .unwrap_or_default();
        Status::unavailable(format!("no config loaded yet{why}"))
    })
}

/// Maps an engine lookup error to its gRPC status; an unknown key names the
/// closest served keys.
pub fn eval_status(snap: &Snapshot, e: EvalError) -> Status {
    let hint = match &e {
        EvalError::NotFound(k) => snap.did_you_mean(k),
        EvalError::Draft(_) => String::new(),
    };
    Status::not_found(format!("{e}{hint}"))
}
