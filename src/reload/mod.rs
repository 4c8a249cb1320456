//! Keeping the served snapshot current: the [`store::Store`] that request handlers
//! read lock-free, the all-or-nothing [`apply::reload_now`] step that startup and
//! the watcher both use, and the [`watch`]er that follows the config directory.

pub mod apply;
pub mod background;
pub mod reaper;
pub mod rearm;
pub mod settle;
pub mod stamp;
pub mod store;
pub mod watch;

pub use apply::{reload_now, ReloadOutcome};
pub use store::{ReloadEvent, ReloadStatus, Store};
pub use watch::{WatchError, WatchHandle, WatchOptions, WatchStats};
