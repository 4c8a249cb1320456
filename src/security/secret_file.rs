//! Small secret files (certificates, keys, tokens) read with a size cap and
//! followed by polling.
//!
//! Why polling and not the config directory's inotify watcher: Secret and
//! cert-manager volumes are updated by the kubelet's `..data` symlink swap at
//! most once per sync period (a minute or more), the files are a few KiB, and a
//! poll that re-reads them and compares bytes sees every kind of update (swap,
//! in-place write, bind mount, network filesystem) with no event plumbing. The
//! cost is one `read` per file per interval.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::shutdown::Shutdown;

/// Largest secret file accepted (a certificate chain is a few KiB).
pub const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// A secret file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {why}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it, for the person reading the log.
    pub why: String,
}

/// Reads `path` whole, refusing files over [`MAX_SECRET_FILE_BYTES`] (checked
/// before reading, and again on what was read, so a growing file cannot slip by).
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let err = |why: String| FileError {
        path: path.to_owned(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(err(format!(
            "larger than {MAX_SECRET_FILE_BYTES} bytes; not a certificate, key or token file"
        )));
    }
    Ok(bytes)
}

/// How many times [`read_consistent`] re-reads files whose `..data` moved.
const CONSISTENT_READ_ATTEMPTS: usize = 5;

/// Reads every file in `paths`; if the `..data` link of any of their
/// directories moved meanwhile (a Secret volume update), reads again, so a
/// certificate and its key always come from the same version.
pub fn read_consistent(paths: &[PathBuf]) -> Vec<Result<Vec<u8>, FileError>> {
    let links = || {
        paths
            .iter()
            .map(|p| {
                p.parent()
                    .and_then(|d| std::fs::read_link(d.join("..data")).ok())
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for _ in 0..CONSISTENT_READ_ATTEMPTS {
        let before = links();
        out = paths.iter().map(|p| read_bounded(p)).collect();
        if before == links() {
            break;
        }
    }
    out
}

/// Re-reads `paths` every `interval` and calls `on_change` with their contents
/// whenever any of them differs from the last read (an unreadable file counts
/// as a change, so `on_change` can report it). Ends on `shutdown`.
pub fn follow<F>(paths: Vec<PathBuf>, interval: Duration, mut shutdown: Shutdown, mut on_change: F)
where
    F: FnMut(Vec<Result<Vec<u8>, FileError>>) + Send + 'static,
{
    let read_all = |paths: &[PathBuf]| read_consistent(paths);
    let mut last = read_all(&paths);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => return,
            }
            let paths2 = paths.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || read_all(&paths2)).await else {
                continue;
            };
            if now != last {
                last = now.clone();
                on_change(now);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let e = read_bounded(&p).unwrap_err();
        assert!(e.why.contains("larger than"), "{e}");
        std::fs::write(&p, b"ok").unwrap();
        assert_eq!(read_bounded(&p).unwrap(), b"ok");
        assert!(read_bounded(&dir.path().join("missing")).is_err());
    }
}
