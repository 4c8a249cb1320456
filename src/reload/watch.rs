//! Watching the config directory and feeding the [`Store`].
//!
//! The watcher watches the *directory*, never the files: Kubernetes updates a
//! ConfigMap volume by writing a new timestamped directory and renaming a `..data`
//! symlink over the old one, and editors save by writing a temporary file and
//! renaming it over the original. A watch on a file would follow the old inode and
//! miss every update after the first; a watch on the directory sees each rename.
//!
//! Events are debounced (a burst of writes gives one reload), every reload goes
//! through [`reload_now`] (all or nothing) on a blocking thread, off the request path,
//! and a periodic content-hash check catches changes whose events were lost
//! (inotify queue overflow or watch limits, network filesystems that send none).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use super::{reload_now, ReloadOutcome, Store};
use crate::config::load::{fingerprint, read_sources};

/// How the watcher reacts to changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Quiet time after the last filesystem event before reloading. A ConfigMap
    /// update or an editor save is several events in a few milliseconds; waiting
    /// for quiet turns them into one reload. A burst that never goes quiet is
    /// still reloaded after at most ten times this delay.
    pub debounce: Duration,
    /// How often to hash the directory's contents as a fallback for missed events.
    /// The reload runs only if the hash changed. `Duration::ZERO` disables it.
    pub poll_interval: Duration,
    /// Whether to subscribe to filesystem events at all. `false` leaves only the
    /// poll, for filesystems that send no events (and to test the fallback alone).
    pub events: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(100),
            poll_interval: Duration::from_secs(5),
            events: true,
        }
    }
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// [`spawn`] was called outside a tokio runtime.
    #[error("the config watcher must be started inside a tokio runtime")]
    NoRuntime,
    /// The operating system refused the watch (missing directory, inotify limits).
    #[error("cannot watch {}: {}", path.display(), why(source))]
    Notify {
        /// The directory we tried to watch.
        path: PathBuf,
        /// What the OS said.
        source: notify::Error,
    },
}

/// notify's own wording (`No path was found. about [...]`) is written for its
/// developers; say what happened.
fn why(e: &notify::Error) -> String {
    use notify::ErrorKind as K;
    match &e.kind {
        K::PathNotFound => "it does not exist".into(),
        K::Io(io) => io.to_string(),
        K::MaxFilesWatch => {
            "the inotify watch limit is reached (raise fs.inotify.max_user_watches)".into()
        }
        K::Generic(s) => s.clone(),
        K::WatchNotFound => "the watch was removed".into(),
        K::InvalidConfig(c) => format!("invalid watcher settings {c:?}"),
    }
}

/// Counters of what the watcher has done, for tests and metrics: they show that
/// the poll ran and whether it led to reloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Fallback content-hash checks performed.
    pub polls: u64,
    /// Reload attempts (each one a [`reload_now`] call), whatever their outcome.
    pub reloads: u64,
}

#[derive(Debug, Default)]
struct Counters {
    polls: AtomicU64,
    reloads: AtomicU64,
}

/// A running watcher. Dropping it stops watching; [`WatchHandle::stop`] also waits
/// for a reload in progress to finish, so the store no longer changes afterwards.
#[derive(Debug)]
pub struct WatchHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Held only so that dropping the handle drops the OS watch.
    _watcher: Option<RecommendedWatcher>,
    counters: Arc<Counters>,
}

impl WatchHandle {
    /// Stops watching and waits until the watcher task has exited.
    pub async fn stop(mut self) {
        self._watcher = None;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // A panic inside the task was already reported by the runtime.
            let _ = task.await;
        }
    }

    /// What the watcher has done so far.
    pub fn stats(&self) -> WatchStats {
        WatchStats {
            polls: self.counters.polls.load(Ordering::Relaxed),
            reloads: self.counters.reloads.load(Ordering::Relaxed),
        }
    }
}

/// Starts watching `dir` (a config directory, or a single config file, in which
/// case its parent directory is watched) and reloads `store` whenever it changes.
///
/// Must be called inside a tokio runtime. The watch is registered before this
/// returns, and the watcher reloads once right away, so no change made after the
/// caller's own startup [`reload_now`] can be missed.
pub fn spawn(
    dir: PathBuf,
    store: Arc<Store>,
    opts: WatchOptions,
) -> Result<WatchHandle, WatchError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
    let wake = Arc::new(Notify::new());
    let watcher = if opts.events {
        Some(watch_dir(&dir, Arc::clone(&wake))?)
    } else {
        None
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let task = runtime.spawn(run(dir, store, opts, wake, stop_rx, Arc::clone(&counters)));
    Ok(WatchHandle {
        stop: Some(stop_tx),
        task: Some(task),
        _watcher: watcher,
        counters,
    })
}

/// Registers a non-recursive OS watch on the directory; every relevant event
/// wakes the reload loop (`Notify` keeps one pending wake-up, so bursts coalesce).
fn watch_dir(dir: &Path, wake: Arc<Notify>) -> Result<RecommendedWatcher, WatchError> {
    let target = if dir.is_file() {
        dir.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    } else {
        dir
    };
    let err = |source| WatchError::Notify {
        path: target.to_owned(),
        source,
    };
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) if !is_relevant(&ev.kind) => {}
            Ok(_) => wake.notify_one(),
            Err(e) => {
                // Lost events (e.g. queue overflow): reload to be safe.
                tracing::warn!(error = %e, "config watch error; reloading");
                wake.notify_one();
            }
        })
        .map_err(err)?;
    watcher
        .watch(target, RecursiveMode::NonRecursive)
        .map_err(err)?;
    Ok(watcher)
}

/// Opening or reading a file changes nothing, and our own reloads read every file:
/// reacting to those would loop. A close after writing does count.
fn is_relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn run(
    dir: PathBuf,
    store: Arc<Store>,
    opts: WatchOptions,
    wake: Arc<Notify>,
    mut stop: oneshot::Receiver<()>,
    counters: Arc<Counters>,
) {
    let mut last = reload(&dir, &store, &counters, "start").await;
    // A zero period would make `interval` panic; zero means "no polling".
    let period = if opts.poll_interval.is_zero() {
        Duration::from_secs(60 * 60 * 24 * 365)
    } else {
        opts.poll_interval
    };
    let mut poll = tokio::time::interval_at(Instant::now() + period, period);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = wake.notified() => {
                let deadline = Instant::now() + opts.debounce.saturating_mul(10);
                loop {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = wake.notified() => continue,
                        _ = sleep(opts.debounce) => break,
                        _ = sleep_until(deadline) => break,
                    }
                }
                last = reload(&dir, &store, &counters, "event").await;
            }
            _ = poll.tick(), if !opts.poll_interval.is_zero() => {
                counters.polls.fetch_add(1, Ordering::Relaxed);
                let d = dir.clone();
                let now = tokio::task::spawn_blocking(move || content_hash(&d)).await.ok();
                if now.is_none() || now != last {
                    last = reload(&dir, &store, &counters, "poll").await;
                }
            }
        }
    }
}

/// A hash of what a reload would read: the files' names and bytes, or the read
/// error (so a persistently unreadable directory is not re-rejected every poll).
fn content_hash(dir: &Path) -> u64 {
    match read_sources(dir) {
        Ok(files) => fingerprint(&files),
        Err(e) => seahash::hash(format!("unreadable\0{e}").as_bytes()),
    }
}

/// One reload on a blocking thread. Returns the content hash taken *before* the
/// reload read the files, so a change racing with the reload is seen by the next
/// poll (at worst one extra, no-op reload), never missed.
async fn reload(
    dir: &Path,
    store: &Arc<Store>,
    counters: &Counters,
    trigger: &'static str,
) -> Option<u64> {
    let (d, s) = (dir.to_owned(), Arc::clone(store));
    let result = tokio::task::spawn_blocking(move || {
        let hash = content_hash(&d);
        let previous = s.load();
        let was_failing = s.status().last_error.is_some();
        let outcome = reload_now(&d, &s);
        let serving = s
            .load()
            .map(|snap| (snap.version().to_owned(), snap.experiments().len()));
        if let (ReloadOutcome::Applied(_), Some(previous)) = (&outcome, previous) {
            release(previous);
        }
        (hash, outcome, was_failing, serving)
    })
    .await;
    counters.reloads.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok((hash, outcome, was_failing, serving)) => {
            log_outcome(dir, trigger, &outcome, was_failing, serving);
            Some(hash)
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "config reload task failed");
            None
        }
    }
}

/// Frees a replaced snapshot here, on the reload thread, rather than wherever its
/// last reader happens to drop it: freeing 10,000 experiments takes milliseconds,
/// and that reader would be a request. Readers hold a snapshot for one request, so
/// waiting for them is short; after a second the last reader frees it after all.
fn release(previous: Arc<crate::Snapshot>) {
    for _ in 0..1000 {
        if Arc::strong_count(&previous) == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(previous);
}

/// Logs one reload: a line per problem, then one line saying what is served
/// now. `was_failing` is whether the previous attempt was rejected (an applied
/// reload after one says the config recovered); `serving` is the version in
/// force after this attempt and its experiment count, if any config ever loaded.
fn log_outcome(
    dir: &Path,
    trigger: &str,
    outcome: &ReloadOutcome,
    was_failing: bool,
    serving: Option<(String, usize)>,
) {
    if let (ReloadOutcome::Applied(_), Some((_, 0))) = (outcome, &serving) {
        // Valid but empty: usually a volume mounted at the wrong path.
        tracing::warn!(
            dir = %dir.display(),
            "the config directory holds no experiments: nothing is served (is the volume mounted at --config-dir?)"
        );
    }
    match outcome {
        ReloadOutcome::Applied(ev) if was_failing => tracing::info!(
            dir = %dir.display(),
            trigger,
            version = %ev.version,
            added = ev.added.len(),
            changed = ev.changed.len(),
            removed = ev.removed.len(),
            "config recovered: the new config is valid and now serves"
        ),
        ReloadOutcome::Applied(ev) => tracing::info!(
            dir = %dir.display(),
            trigger,
            version = %ev.version,
            added = ev.added.len(),
            changed = ev.changed.len(),
            removed = ev.removed.len(),
            "config reload applied"
        ),
        ReloadOutcome::Unchanged if was_failing => tracing::info!(
            dir = %dir.display(),
            trigger,
            "config recovered: the files match the config in force again"
        ),
        ReloadOutcome::Unchanged => {
            tracing::debug!(dir = %dir.display(), trigger, "config reload: content unchanged")
        }
        ReloadOutcome::Rejected(errors) => {
            for e in &errors.0 {
                tracing::warn!(
                    file = %e.file.display(),
                    experiment = e.experiment.as_deref(),
                    field = e.field.as_deref(),
                    error = %e.message,
                    "config problem"
                );
            }
            let problems = errors.0.len();
            match serving {
                Some((version, _)) => tracing::warn!(
                    dir = %dir.display(),
                    trigger,
                    problems,
                    version,
                    "config reload rejected; the last good config keeps serving"
                ),
                None => tracing::error!(
                    dir = %dir.display(),
                    trigger,
                    problems,
                    "config rejected and no config has loaded yet; serving NOT_SERVING until a valid one arrives"
                ),
            }
        }
    }
}
