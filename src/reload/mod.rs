//! Keeping the served snapshot current: the [`store::Store`] that request handlers
//! read lock-free, and the all-or-nothing [`apply::reload_now`] step that startup
//! and the directory watcher both use.

pub mod apply;
pub mod store;

pub use apply::{reload_now, ReloadOutcome};
pub use store::{ReloadEvent, ReloadStatus, Store};
