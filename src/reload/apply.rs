//! One reload attempt: read, parse, compile and publish, all or nothing.

use super::{ReloadEvent, Store};
use crate::config::ConfigErrors;
use crate::Snapshot;
use std::path::Path;

/// What one reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version is now served.
    Applied(ReloadEvent),
    /// The content is identical to what is served; nothing changed.
    Unchanged,
    /// The config is invalid; the previous snapshot (if any) keeps serving.
    Rejected(ConfigErrors),
}

/// Reloads `dir` into `store`. Any unreadable, unparseable or invalid file rejects
/// the whole reload: the last good snapshot keeps serving and the error is recorded
/// in the store's status (for logs, metrics and readiness detail). A valid config
/// that would reshuffle a running experiment is rejected the same way by the
/// cohort guard ([`crate::safety::guard`]).
pub fn reload_now(dir: &Path, store: &Store) -> ReloadOutcome {
    apply_files(crate::config::read_sources(dir), store)
}

/// The rest of [`reload_now`] once the files are read (or failed to read): the
/// watcher reads them itself, under its size limits, to check that the directory
/// did not change while it read.
pub fn apply_files(
    files: Result<Vec<crate::config::RawFile>, ConfigErrors>,
    store: &Store,
) -> ReloadOutcome {
    // Unchanged experiments are copied from the served snapshot (`reuse`).
    let served = store.load();
    let compiled = files.and_then(|f| Snapshot::from_raw_reusing(&f, served.as_deref()));
    drop(served);
    apply_compiled(compiled, store)
}

/// The last step of [`reload_now`]: the cohort guard, then publication.
pub fn apply_compiled(compiled: Result<Snapshot, ConfigErrors>, store: &Store) -> ReloadOutcome {
    match compiled {
        Err(errors) => {
            store.reject(&errors);
            ReloadOutcome::Rejected(errors)
        }
        Ok(snap) => {
            // The cohort guard: refuse reshuffles of running experiments.
            if let Some(served) = store.load() {
                let now = crate::snapshot::schedule::unix_now();
                match crate::safety::guard::check_reload(&served, &snap, now) {
                    Err(refused) => {
                        store.reject_guard(&refused);
                        return ReloadOutcome::Rejected(refused);
                    }
                    Ok(warnings) => store.set_warnings(warnings),
                }
            }
            match store.install(snap) {
                Some(ev) => ReloadOutcome::Applied(ev),
                None => ReloadOutcome::Unchanged,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_reload_keeps_the_last_good_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        std::fs::write(&f, r#"{"key":"a","status":"running","variants":["x","y"]}"#).unwrap();
        let store = Store::default();
        let ReloadOutcome::Applied(ev) = reload_now(dir.path(), &store) else {
            panic!("first load must apply")
        };
        assert_eq!(ev.added, vec!["a"]);
        let good = store.load().unwrap().version().to_owned();
        std::fs::write(&f, r#"{"key":"a","status":"running","variants":[]}"#).unwrap();
        let ReloadOutcome::Rejected(errs) = reload_now(dir.path(), &store) else {
            panic!("must reject")
        };
        assert_eq!(errs.0[0].field.as_deref(), Some("variants"));
        assert_eq!(store.load().unwrap().version(), good);
        assert!(store.status().last_error.unwrap().contains("a.json"));
        std::fs::write(&f, r#"{"key":"a","status":"running","variants":["x","y"]}"#).unwrap();
        assert_eq!(reload_now(dir.path(), &store), ReloadOutcome::Unchanged);
        assert!(store.status().last_error.is_none());
    }
}
