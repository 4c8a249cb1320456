//! Watching the config directory and feeding the [`Store`].
//!
//! The watcher watches the *directory*, never the files: Kubernetes updates a
//! ConfigMap volume by writing a new timestamped directory and renaming a `..data`
//! symlink over the old one, and editors save by writing a temporary file and
//! renaming it over the original. A watch on a file would follow the old inode and
//! miss every update after the first; a watch on the directory sees each rename.
//!
//! Events are debounced (a burst of writes gives one reload), every reload goes
//! through [`super::reload_now`]'s steps (all or nothing) on a blocking thread, off the request path,
//! and a periodic metadata check ([`super::stamp`]) catches changes whose events
//! were lost (inotify queue overflow or watch limits, network filesystems that
//! send none). A plain directory's content is applied once it has settled
//! ([`super::settle`]); a replaced directory gets its watch re-armed ([`super::rearm`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use super::rearm::Rearm;
use super::settle::{self, Settle};
use super::stamp::stamp;
use super::{ReloadOutcome, Store};
use crate::config::ReadLimits;

/// How the watcher reacts to changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Quiet time after the last filesystem event before reloading. A ConfigMap
    /// update or an editor save is several events in a few milliseconds; waiting
    /// for quiet turns them into one reload. A burst that never goes quiet is
    /// still reloaded after at most ten times this delay.
    pub debounce: Duration,
    /// How often to compare the directory's metadata stamp as a fallback for
    /// missed events. The reload runs only if the stamp changed. `Duration::ZERO` disables it.
    pub poll_interval: Duration,
    /// Whether to subscribe to filesystem events at all. `false` leaves only the
    /// poll, for filesystems that send no events (and to test the fallback alone).
    pub events: bool,
    /// How long a plain directory must stay unchanged before its content is
    /// applied (see [`super::settle`]).
    pub settle: Settle,
    /// Size limits on what a reload reads.
    pub limits: ReadLimits,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(100),
            poll_interval: Duration::from_secs(5),
            events: true,
            settle: Settle::default(),
            limits: ReadLimits::default(),
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
    /// Reload attempts (each one read, compile and apply), whatever their outcome.
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
    // Shared with the task, which re-arms the watch when the directory is
    // replaced; dropping the handle (and the task) drops the OS watch.
    watcher: Option<Arc<Rearm>>,
    counters: Arc<Counters>,
    force: Arc<Notify>,
}

impl WatchHandle {
    /// Stops watching and waits until the watcher task has exited.
    pub async fn stop(mut self) {
        self.watcher = None;
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // A panic inside the task was already reported by the runtime.
            let _ = task.await;
        }
    }

    /// Asks for a reload right away, skipping the debounce and settle waits
    /// (SIGHUP). The reload runs on the watcher task, so it never races another.
    pub fn reload(&self) {
        self.force.notify_one();
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
/// caller's own startup [`super::reload_now`] can be missed.
pub fn spawn(
    dir: PathBuf,
    store: Arc<Store>,
    opts: WatchOptions,
) -> Result<WatchHandle, WatchError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
    let wake = Arc::new(Notify::new());
    let watcher = if opts.events {
        Some(Arc::new(Rearm::new(
            watch_dir(&dir, Arc::clone(&wake))?,
            &dir,
        )))
    } else {
        None
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let force = Arc::new(Notify::new());
    let task = runtime.spawn(run(
        dir,
        store,
        opts,
        watcher.clone(),
        wake,
        Arc::clone(&force),
        stop_rx,
        Arc::clone(&counters),
    ));
    Ok(WatchHandle {
        stop: Some(stop_tx),
        task: Some(task),
        watcher,
        counters,
        force,
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
    // The parent is watched too, so that the directory being deleted and
    // recreated wakes us (the watch on the old directory dies with it); events
    // about the parent's other entries are ignored.
    let ours = super::rearm::absolute(target);
    let parent = (target == dir)
        .then(|| ours.parent().map(Path::to_owned))
        .flatten();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) if !is_relevant(&ev.kind) => {}
            Ok(ev) if !ev.paths.is_empty() && !ev.paths.iter().any(|p| p.starts_with(&ours)) => {}
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
    if let Some(p) = parent {
        // Best effort: without it, a replaced directory is noticed by the poll.
        if let Err(e) = watcher.watch(&p, RecursiveMode::NonRecursive) {
            tracing::debug!(parent = %p.display(), error = %e, "cannot watch the config directory's parent");
        }
    }
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

#[allow(clippy::too_many_arguments)]
async fn run(
    dir: PathBuf,
    store: Arc<Store>,
    opts: WatchOptions,
    rearm: Option<Arc<Rearm>>,
    wake: Arc<Notify>,
    force: Arc<Notify>,
    mut stop: oneshot::Receiver<()>,
    counters: Arc<Counters>,
) {
    let r = Reloader {
        dir: &dir,
        store: &store,
        opts: &opts,
        counters: &counters,
    };
    let Some(mut last) = r.reload("start", true, &mut stop).await else {
        return;
    };
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
            _ = force.notified() => {
                if let Some(w) = &rearm { w.check(&dir) }
                match r.reload("SIGHUP", true, &mut stop).await { Some(s) => last = s, None => return }
            }
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
                if let Some(w) = &rearm { w.check(&dir) }
                match r.reload("event", false, &mut stop).await { Some(s) => last = s, None => return }
            }
            _ = poll.tick(), if !opts.poll_interval.is_zero() => {
                counters.polls.fetch_add(1, Ordering::Relaxed);
                if let Some(w) = &rearm { w.check(&dir) }
                let d = dir.clone();
                let now = tokio::task::spawn_blocking(move || stamp(&d)).await.ok();
                if now != Some(last) {
                    match r.reload("poll", false, &mut stop).await { Some(s) => last = s, None => return }
                }
            }
        }
    }
}

/// One watcher's reload step.
struct Reloader<'a> {
    dir: &'a Path,
    store: &'a Arc<Store>,
    opts: &'a WatchOptions,
    counters: &'a Counters,
}

impl Reloader<'_> {
    /// One reload: waits for the content to settle (unless `immediate`), applies
    /// it, logs the outcome. Returns the stamp of what was read, so that a change
    /// racing with the reload is seen by the next poll, never missed; `None` when
    /// `stop` fired.
    async fn reload(
        &self,
        trigger: &'static str,
        immediate: bool,
        stop: &mut oneshot::Receiver<()>,
    ) -> Option<u64> {
        let ready = settle::settled(
            self.dir,
            self.store,
            self.opts.limits,
            self.opts.settle,
            immediate,
            stop,
        )
        .await;
        let ready = ready?;
        let stamp = ready.stamp;
        let was_failing = self.store.status().last_error.is_some();
        let outcome = settle::apply(ready, self.store).await;
        self.counters.reloads.fetch_add(1, Ordering::Relaxed);
        let serving = self
            .store
            .load()
            .map(|snap| (snap.version().to_owned(), snap.experiments().len()));
        match outcome {
            Some(outcome) => log_outcome(self.dir, trigger, &outcome, was_failing, serving),
            None => tracing::error!(dir = %self.dir.display(), "config reload task failed"),
        }
        Some(stamp)
    }
}

/// Rejection errors logged per reload.
const LOGGED_ERRORS: usize = 5;

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
        ReloadOutcome::Applied(ev) => {
            let what = if was_failing {
                "config recovered: the new config is valid and now serves"
            } else {
                "config reload applied"
            };
            tracing::info!(
                dir = %dir.display(),
                trigger,
                version = %ev.version,
                added = ev.added.len(),
                changed = ev.changed.len(),
                removed = ev.removed.len(),
                "{what}"
            )
        }
        ReloadOutcome::Unchanged if was_failing => tracing::info!(
            dir = %dir.display(),
            trigger,
            "config recovered: the files match the config in force again"
        ),
        ReloadOutcome::Unchanged => {
            tracing::debug!(dir = %dir.display(), trigger, "config reload: content unchanged")
        }
        ReloadOutcome::Rejected(errors) => {
            // A few lines, not one per error: the full list is in /readyz.
            if errors.0.len() > LOGGED_ERRORS {
                tracing::warn!(
                    dir = %dir.display(),
                    trigger,
                    count = errors.0.len(),
                    "config reload rejected with {} errors; the first {LOGGED_ERRORS} follow, /readyz lists more",
                    errors.0.len()
                );
            }
            for e in errors.0.iter().take(LOGGED_ERRORS) {
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
