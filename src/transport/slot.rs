//! One taken slot of a bounded resource (a connection, a stream): the
//! semaphore permit and the open-count gauge travel together, so the slot is
//! freed and the gauge lowered by the same drop. Shared by `conn_limit` and
//! `stream_limit`.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A taken slot; dropping it frees the slot and lowers `open`.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Slot {
    /// Takes a slot of `slots`, counting it in `open`; `None` when all are taken.
    pub fn try_take(slots: &Arc<Semaphore>, open: &Gauge) -> Option<Slot> {
        let permit = Arc::clone(slots).try_acquire_owned().ok()?;
        open.inc();
        Some(Slot {
            _permit: permit,
            open: open.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}
