//! Reload work on a thread of its own, at a lower CPU priority than the
//! request workers.
//!
//! A reload of a large config is tens of milliseconds of CPU; on a pod with two
//! cores it competes with the tokio workers that answer requests, and every
//! request queued behind it is a slower request (`benches/reload_storm.sh`
//! measures p99 during reloads). A reload has no deadline a person could see,
//! so its thread (and the parse thread it starts, which inherits its nice
//! value) runs at [`RELOAD_NICE`]: the kernel gives the workers the CPU first
//! whenever both want it, and the reload all the idle time.
//!
//! A thread per reload, not tokio's blocking pool: a nice value stays with its
//! thread, and an unprivileged process cannot raise it back, so lowering a pool
//! thread would slow whatever else later runs on it. Starting a thread costs tens
//! of microseconds, nothing beside a reload. Where the priority cannot be
//! changed (not Linux, or a seccomp policy that refuses it) the reload runs at
//! normal priority, as before.

use std::sync::{Arc, Mutex};

/// The nice value of reload threads (0 is normal, 19 the lowest priority).
pub const RELOAD_NICE: i32 = 10;

/// Runs `f` on a new low-priority thread named `name` and returns its result;
/// `None` if `f` panicked. When no thread can be started (resource limits),
/// `f` runs on tokio's blocking pool at normal priority, as reloads did before.
pub async fn run<T, F>(name: &str, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // Shared so that a failed spawn, which drops its closure, leaves `f` here.
    let job = Arc::new(Mutex::new(Some(f)));
    let take = |j: &Mutex<Option<F>>| j.lock().unwrap_or_else(|p| p.into_inner()).take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let theirs = Arc::clone(&job);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            lower_priority();
            if let Some(f) = take(&theirs) {
                let _ = tx.send(f());
            }
        });
    match spawned {
        Ok(_) => rx.await.ok(),
        Err(_) => {
            let f = take(&job)?;
            tokio::task::spawn_blocking(f).await.ok()
        }
    }
}

/// Lowers the calling thread's priority to [`RELOAD_NICE`] (best effort).
pub fn lower_priority() {
    crate::priority::lower_priority_to(RELOAD_NICE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::priority::current_nice;

    #[tokio::test]
    async fn runs_on_a_lower_priority_thread_and_returns_the_result() {
        let before = current_nice();
        let (nice, name) = run("cohortd-reload-test", || {
            (
                current_nice(),
                std::thread::current().name().map(str::to_owned),
            )
        })
        .await
        .expect("the thread ran");
        assert_eq!(name.as_deref(), Some("cohortd-reload-test"));
        if cfg!(target_os = "linux") {
            let before = before.expect("readable");
            // A run already nicer than RELOAD_NICE stays as nice.
            assert_eq!(nice, Some(before.max(RELOAD_NICE)));
            assert_eq!(current_nice(), Some(before), "the caller is untouched");
        }
        assert!(run("cohortd-reload-test", || panic!("boom"))
            .await
            .is_none());
    }
}
