//! Keeping the directory watch alive when the directory itself is replaced.
//!
//! An inotify watch belongs to an inode. When the config directory is deleted and
//! recreated (a deploy script doing `rm -rf conf && mkdir conf`, a volume
//! remounted), the old watch dies with the old inode and no event about the new
//! directory's files would ever arrive; only the poll would notice, and with the
//! poll off nothing would. The watcher therefore also watches the parent (which
//! reports the directory's removal and re-creation) and, before each reload,
//! compares the directory's inode with the one it armed: if it changed, it drops
//! the stale watch and watches the new directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A directory watch that re-arms itself on a replaced directory.
#[derive(Debug)]
pub struct Rearm {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    watcher: RecommendedWatcher,
    /// `(device, inode)` of the directory the watch is on; `None` for a single
    /// config file (its parent is watched and never re-armed).
    armed: Option<(u64, u64)>,
}

fn identity(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// `path` made absolute without resolving symlinks (a symlinked config directory
/// must keep being followed through its link).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

impl Rearm {
    /// Wraps a watcher already watching `dir`.
    pub fn new(watcher: RecommendedWatcher, dir: &Path) -> Rearm {
        Rearm {
            inner: Mutex::new(Inner {
                watcher,
                armed: identity(dir),
            }),
        }
    }

    /// Re-arms the watch if `dir` is now a different directory than the one
    /// watched. Cheap (one `stat`) when nothing changed.
    pub fn check(&self, dir: &Path) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(armed) = inner.armed else { return };
        let Some(now) = identity(dir) else { return };
        if now == armed {
            return;
        }
        // The old watch is usually gone already (its inode was deleted).
        let _ = inner.watcher.unwatch(dir);
        match inner.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                inner.armed = Some(now);
                tracing::info!(dir = %dir.display(), "config directory was replaced; watch re-armed");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "config directory was replaced and cannot be watched; the poll still follows it")
            }
        }
    }
}
