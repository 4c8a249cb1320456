//! The state every request handler shares, below the transports that read it
//! and the server that builds it (so neither imports the other for it).

use std::sync::Arc;

use tonic_health::server::HealthReporter;

use crate::exposure::ExposureSink;
use crate::metrics::Metrics;
use crate::reload::Store;
use crate::shutdown::Shutdown;
use crate::transport::limits::Limits;

/// Everything a request handler may need, shared by every service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The serving snapshot (lock-free reads).
    pub store: Arc<Store>,
    /// Where exposures go; must not block.
    pub sink: Arc<dyn ExposureSink>,
    /// The process's metrics registry.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// gRPC health statuses.
    pub health: HealthReporter,
    /// Fires when the server is shutting down; long-lived streams end on it.
    pub shutdown: Shutdown,
}
