//! Applying only settled content.
//!
//! A ConfigMap volume is updated atomically (the kubelet swaps the `..data`
//! symlink), so whatever we read there is a whole version and is applied at once.
//! A plain directory is not: `cp` or a deploy script writes its files one by one,
//! and each intermediate state is a valid-looking config with experiments missing.
//! Serving those states would end running experiments for the calls in between.
//!
//! So in a plain directory a reload waits until the directory's [`stamp`] has not
//! changed for `settle` (and re-checks it after reading, so a file written during
//! the read restarts the wait); and a reload that would *remove a running
//! experiment* waits until the content has been stable for `removal_settle`, a
//! longer time, because a missing file is exactly what a half-finished copy looks
//! like. A writer that never pauses is applied anyway after [`MAX_WAIT`], with a
//! warning, so a busy directory cannot stop reloads forever.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{sleep, Instant};

use super::stamp::{is_atomic_volume, stamp};
use super::{apply::apply_compiled, ReloadOutcome, Store};
use crate::config::{read_sources_with, ConfigErrors, ReadLimits};
use crate::Snapshot;

/// The longest a reload waits for a plain directory to settle.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How long content must stay unchanged before it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// Any change in a plain directory (`--settle`).
    pub settle: Duration,
    /// A change that removes a running experiment (`--removal-settle`).
    pub removal_settle: Duration,
}

impl Default for Settle {
    fn default() -> Self {
        Settle {
            settle: Duration::from_millis(500),
            removal_settle: Duration::from_secs(5),
        }
    }
}

/// What [`settled`] read and compiled, ready to apply.
pub struct Ready {
    /// The stamp of the content read.
    pub stamp: u64,
    /// The compiled config, or why it is invalid.
    pub compiled: Result<Snapshot, ConfigErrors>,
}

/// Reads and compiles `dir` once its content has settled (see the module doc).
/// `immediate` skips the waits (startup, SIGHUP). Returns `None` if `stop` fired.
pub async fn settled(
    dir: &Path,
    store: &Arc<Store>,
    limits: ReadLimits,
    s: Settle,
    immediate: bool,
    stop: &mut oneshot::Receiver<()>,
) -> Option<Ready> {
    let started = Instant::now();
    let mut since = Instant::now();
    let mut last = blocking_stamp(dir).await;
    loop {
        let patient = !immediate && started.elapsed() < MAX_WAIT && !is_atomic_volume(dir);
        if patient && !s.settle.is_zero() {
            let wait = s.settle.saturating_sub(since.elapsed());
            if let Some(now) = changed_after(wait, dir, last, stop).await? {
                (last, since) = (now, Instant::now());
                continue;
            }
        }
        let (d, st) = (dir.to_owned(), Arc::clone(store));
        // Off the request workers, at a lower priority (see `super::background`).
        let (after, compiled) = super::background::run("cohortd-reload", move || {
            let files = read_sources_with(&d, &limits);
            // Unchanged files and experiments are taken from the served snapshot
            // (`snapshot::sources`, `snapshot::reuse`).
            let served = st.load();
            let compiled = files.and_then(|f| Snapshot::from_raw_reusing(&f, served.as_deref()));
            (stamp(&d), compiled)
        })
        .await?;
        if patient && after != last {
            (last, since) = (after, Instant::now());
            continue;
        }
        if patient {
            if let (Ok(next), Some(served)) = (&compiled, store.load()) {
                let wait = s.removal_settle.saturating_sub(since.elapsed());
                if !wait.is_zero() && removes_running(&served, next) {
                    tracing::info!(
                        dir = %dir.display(),
                        wait = %format_args!("{:.1}s", wait.as_secs_f64()),
                        "config change removes a running experiment; waiting for it to persist (--removal-settle)"
                    );
                    if let Some(now) = changed_after(wait, dir, last, stop).await? {
                        (last, since) = (now, Instant::now());
                        continue;
                    }
                }
            }
        } else if !immediate && started.elapsed() >= MAX_WAIT {
            tracing::warn!(dir = %dir.display(), waited = %format_args!("{}s", MAX_WAIT.as_secs()), "config directory never settled; applying what is there now");
        }
        return Some(Ready {
            stamp: last,
            compiled,
        });
    }
}

/// Waits `wait` (or until `stop`: `None`), then re-stamps `dir`: the new stamp
/// if the content changed since `last`, so the wait starts over.
async fn changed_after(
    wait: Duration,
    dir: &Path,
    last: u64,
    stop: &mut oneshot::Receiver<()>,
) -> Option<Option<u64>> {
    tokio::select! {
        _ = &mut *stop => return None,
        _ = sleep(wait) => {}
    }
    let now = blocking_stamp(dir).await;
    Some((now != last).then_some(now))
}

/// Applies a [`Ready`] config on a low-priority thread (the cohort guard and
/// the install, see [`super::background`]); the replaced snapshot goes to the
/// [`super::reaper`], which frees it off this path.
pub async fn apply(ready: Ready, store: &Arc<Store>) -> Option<ReloadOutcome> {
    let s = Arc::clone(store);
    super::background::run("cohortd-reload", move || {
        let previous = s.load();
        let outcome = apply_compiled(ready.compiled, &s);
        match (&outcome, previous) {
            (ReloadOutcome::Applied(_), Some(previous)) => super::reaper::release(previous),
            // The first config: building it left parse and compile scratch.
            (ReloadOutcome::Applied(_), None) => crate::transport::mem_return::request(),
            _ => {}
        }
        outcome
    })
    .await
}

async fn blocking_stamp(dir: &Path) -> u64 {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || stamp(&d))
        .await
        .unwrap_or_default()
}

/// Whether `next` lacks an experiment that runs in `served`.
fn removes_running(served: &Snapshot, next: &Snapshot) -> bool {
    served
        .experiments()
        .iter()
        .filter(|e| e.status == crate::config::Status::Running)
        .any(|e| next.experiment(&e.key).is_none())
}
