//! The serving snapshot and its reload history.
//!
//! Request handlers call [`Store::load`], a lock-free `ArcSwap` read. Reloads build
//! a new [`Snapshot`] off the request path and publish it with one atomic store;
//! an old snapshot is freed when its last in-flight reader drops it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use tokio::sync::broadcast;

use crate::config::ConfigErrors;
use crate::Snapshot;

/// What an applied reload changed, by experiment key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReloadEvent {
    /// The version now served.
    pub version: String,
    /// Experiments that did not exist before.
    pub added: Vec<String>,
    /// Experiments whose content (or a segment, layer or holdout they use) changed.
    pub changed: Vec<String>,
    /// Experiments that no longer exist.
    pub removed: Vec<String>,
}

impl ReloadEvent {
    /// Compares two snapshots by experiment fingerprint.
    pub fn between(old: Option<&Snapshot>, new: &Snapshot) -> ReloadEvent {
        let mut ev = ReloadEvent {
            version: new.version().to_owned(),
            ..Default::default()
        };
        // Both lists are sorted by key: one merge walk (see `safety::diff::paired`).
        let before = old.map_or(&[][..], |o| o.experiments());
        let mut removed = Vec::new();
        for pair in crate::safety::diff::paired(before, new.experiments()) {
            match pair {
                (None, Some(e)) => ev.added.push(e.key.to_string()),
                (Some(prev), Some(e)) if !crate::safety::diff::same_fingerprint(prev, e) => {
                    ev.changed.push(e.key.to_string())
                }
                (Some(prev), None) => removed.push(prev.key.to_string()),
                _ => {}
            }
        }
        // flagd-format flags: compared by their compiled definition.
        for f in new.flagd().flags() {
            match old.and_then(|o| o.flagd().get(f.key())) {
                None => ev.added.push(f.key().to_owned()),
                Some(prev) if prev != f => ev.changed.push(f.key().to_owned()),
                Some(_) => {}
            }
        }
        if let Some(o) = old {
            ev.removed = removed
                .into_iter()
                .chain(
                    o.flagd()
                        .flags()
                        .iter()
                        .filter(|f| new.flagd().get(f.key()).is_none())
                        .map(|f| f.key().to_owned()),
                )
                .collect();
        }
        ev
    }
}

/// Reload bookkeeping for health, metrics and readiness detail.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Successful reloads that changed the version.
    pub applied: u64,
    /// Reloads that found identical content (no-ops).
    pub unchanged: u64,
    /// Rejected reloads (invalid config, or refused by the cohort guard).
    pub rejected: u64,
    /// Of `rejected`, those refused by the cohort guard (a valid config that would
    /// reshuffle a running experiment without an `assignment.epoch` bump).
    pub guard_rejected: u64,
    /// When the served snapshot was last confirmed current (applied or unchanged).
    pub last_success: Option<SystemTime>,
    /// The most recent rejection, cleared by the next success. At most
    /// [`MAX_ERRORS_KEPT`] errors are listed.
    pub last_error: Option<String>,
    /// Cohort-guard warnings of the last reload that passed the guard (count and
    /// a bounded list), for `/readyz`.
    pub last_warnings: crate::safety::summary::Summary,
}

/// Errors listed in [`ReloadStatus::last_error`]; the rest are counted.
pub const MAX_ERRORS_KEPT: usize = 100;

/// `why` as text, listing at most [`MAX_ERRORS_KEPT`] errors.
fn bounded(why: &ConfigErrors) -> String {
    if why.0.len() <= MAX_ERRORS_KEPT {
        return why.to_string();
    }
    let first = ConfigErrors(why.0[..MAX_ERRORS_KEPT].to_vec());
    format!(
        "{first}\n… and {} more errors",
        why.0.len() - MAX_ERRORS_KEPT
    )
}

/// Holds the serving snapshot. Share it as `Arc<Store>`.
#[derive(Debug)]
pub struct Store {
    current: ArcSwapOption<Snapshot>,
    events: broadcast::Sender<ReloadEvent>,
    status: Mutex<ReloadStatus>,
    flagd_form: crate::engine::flagd::FractionalForm,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            current: ArcSwapOption::empty(),
            events: broadcast::channel(64).0,
            status: Mutex::default(),
            flagd_form: Default::default(),
        }
    }
}

impl Store {
    /// An empty store: nothing is served until the first valid config is installed.
    pub fn new() -> Arc<Store> {
        Arc::new(Store::default())
    }

    /// An empty store whose snapshots evaluate flagd `fractional` with `form`
    /// (`serve --flagd-fractional`).
    pub fn with_flagd_form(form: crate::engine::flagd::FractionalForm) -> Arc<Store> {
        Arc::new(Store {
            flagd_form: form,
            ..Store::default()
        })
    }

    /// The snapshot in force, if any. Lock-free; hold the result for one request.
    #[inline]
    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Publishes `next` unless it has the version already served. Returns the
    /// change event when something was applied.
    pub fn install(&self, next: Snapshot) -> Option<ReloadEvent> {
        let next = next.with_flagd_form(self.flagd_form);
        let old = self.current.load_full();
        let now = SystemTime::now();
        if old
            .as_deref()
            .is_some_and(|o| o.version() == next.version())
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.unchanged += 1;
            st.last_success = Some(now);
            st.last_error = None;
            return None;
        }
        let ev = ReloadEvent::between(old.as_deref(), &next);
        self.current.store(Some(Arc::new(next)));
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.applied += 1;
            st.last_success = Some(now);
            st.last_error = None;
        }
        // No subscribers is fine: Watch streams come and go.
        let _ = self.events.send(ev.clone());
        Some(ev)
    }

    /// Records a rejected reload; the served snapshot is untouched.
    pub fn reject(&self, why: &ConfigErrors) {
        self.reject_with(bounded(why));
    }

    /// Records the cohort-guard warnings of a reload about to be installed.
    pub fn set_warnings(&self, w: crate::safety::summary::Summary) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_warnings = w;
    }

    /// Records a rejected reload with a ready-made message.
    pub fn reject_with(&self, message: String) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.rejected += 1;
        st.last_error = Some(message);
    }

    /// Records a reload refused by the cohort guard (counted in `rejected` and
    /// `guard_rejected`); the served snapshot is untouched.
    pub fn reject_guard(&self, why: &ConfigErrors) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.rejected += 1;
        st.guard_rejected += 1;
        st.last_error = Some(bounded(why));
    }

    /// Subscribes to applied reloads.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.events.subscribe()
    }

    /// A copy of the reload bookkeeping.
    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_sources;
    use crate::config::RawFile;

    fn snap(text: &str) -> Snapshot {
        let files = vec![RawFile {
            path: "a.json".into(),
            bytes: text.as_bytes().to_vec(),
        }];
        Snapshot::compile(&parse_sources(&files).unwrap()).unwrap()
    }

    #[test]
    fn install_reports_changes_and_ignores_identical_content() {
        let store = Store::default();
        let mut rx = store.subscribe();
        assert!(store.load().is_none());
        let a = r#"[{"key":"a","status":"running","variants":["x"]},{"key":"b","status":"running","variants":["x"]}]"#;
        let ev = store.install(snap(a)).unwrap();
        assert_eq!(ev.added, vec!["a", "b"]);
        assert_eq!(rx.try_recv().unwrap(), ev);
        assert!(
            store.install(snap(a)).is_none(),
            "identical content is a no-op"
        );
        let b = r#"[{"key":"a","status":"running","variants":["x","y"]},{"key":"c","status":"running","variants":["x"]}]"#;
        let ev = store.install(snap(b)).unwrap();
        assert_eq!(
            (ev.added, ev.changed, ev.removed),
            (
                vec!["c".to_string()],
                vec!["a".to_string()],
                vec!["b".to_string()]
            )
        );
        let st = store.status();
        assert_eq!((st.applied, st.unchanged, st.rejected), (2, 1, 0));
        assert_eq!(store.load().unwrap().version(), snap(b).version());
    }
}
