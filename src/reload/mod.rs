//! Keeping the served snapshot current: the [`store::Store`] that request handlers
//! read lock-free, and (in `watch`) the directory watcher that feeds it.

pub mod store;

pub use store::{ReloadEvent, ReloadStatus, Store};
