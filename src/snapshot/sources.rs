//! The per-file parse cache of a reload.
//!
//! A snapshot keeps, for each config file it was compiled from that parsed
//! without a problem, the file's length and a hash of its bytes beside the
//! parsed document. The next reload hashes each file it reads (about a
//! millisecond for 3 MiB) and, when path, length and hash equal a cached entry,
//! takes that document instead of parsing the file again; its experiments are
//! then known to be written exactly as before, which lets `super::reuse` skip
//! comparing their configs. Files with any problem are never cached, so their
//! errors are found again, the same, on every reload.
//!
//! The hash is SeaHash's 64 bits plus the length: two different contents of one
//! file collide with probability about 2^-64 per change, far below the chance
//! of a disk error; a collision would keep the previous content of that file.

use std::path::Path;
use std::sync::Arc;

use crate::config::{ConfigDocument, ConfigError, RawFile};

/// One file as parsed for a snapshot (only files that parsed cleanly).
#[derive(Debug, Clone)]
pub(crate) struct CachedFile {
    pub(crate) path: Arc<Path>,
    len: usize,
    hash: u64,
    pub(crate) doc: Arc<ConfigDocument>,
}

/// One file of a reload: its document (when it could be read) and problems.
pub(super) struct ReadFile {
    pub(super) path: Arc<Path>,
    pub(super) doc: Option<Arc<ConfigDocument>>,
    pub(super) problems: Vec<ConfigError>,
    /// Taken from the cache: the bytes equal those the served snapshot parsed.
    pub(super) unchanged: bool,
    hash: u64,
    len: usize,
}

impl ReadFile {
    /// The cache entry for this file, if it parsed cleanly.
    pub(super) fn cached(&self) -> Option<CachedFile> {
        match (&self.doc, self.problems.is_empty()) {
            (Some(doc), true) => Some(CachedFile {
                path: self.path.clone(),
                len: self.len,
                hash: self.hash,
                doc: doc.clone(),
            }),
            _ => None,
        }
    }
}

/// Parses `raw` (in order), taking the document of every file whose bytes
/// equal those of a `cache` entry (sorted by path, as files are read) from it.
/// Files that changed parse on two threads when large (see `parse_parallel`).
pub(super) fn parse(raw: &[RawFile], cache: &[CachedFile]) -> Vec<ReadFile> {
    let mut out: Vec<ReadFile> = raw
        .iter()
        .map(|f| {
            let (len, hash) = (f.bytes.len(), seahash::hash(&f.bytes));
            let hit = cache
                .binary_search_by(|c| (*c.path).cmp(&f.path))
                .ok()
                .map(|i| &cache[i])
                .filter(|c| c.len == len && c.hash == hash);
            ReadFile {
                path: hit.map_or_else(|| Arc::from(f.path.as_path()), |c| c.path.clone()),
                doc: hit.map(|c| c.doc.clone()),
                problems: Vec::new(),
                unchanged: hit.is_some(),
                hash,
                len,
            }
        })
        .collect();
    let misses: Vec<&RawFile> = raw
        .iter()
        .zip(&out)
        .filter(|(_, r)| !r.unchanged)
        .map(|(f, _)| f)
        .collect();
    let parsed = crate::config::parse_parallel::parse_all(&misses);
    for (r, (doc, problems)) in out.iter_mut().filter(|r| !r.unchanged).zip(parsed) {
        r.doc = doc.map(Arc::new);
        r.problems = problems;
    }
    out
}
