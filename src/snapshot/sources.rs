//! The per-file parse cache of a reload.
//!
//! A snapshot keeps, for each config file it was compiled from that parsed
//! without a problem, the file's length and a hash of its bytes, the file's
//! shared declarations (segments, layers, holdouts, flagd flags) and the keys
//! of the experiments it defines, in file order. The next reload hashes each
//! file it reads (about a millisecond for 3 MiB) and, when path, length and
//! hash equal a cached entry, does not parse it: its experiments are the
//! served snapshot's (`Experiment::config`, kept anyway), known to be written
//! exactly as before, which lets `super::reuse` skip comparing their configs.
//! Files with any problem are never cached, so their errors are found again,
//! the same, on every reload. Nothing is held twice: the experiments' configs
//! live in the compiled experiments only.
//!
//! The hash is SeaHash's 64 bits plus the length: two different contents of one
//! file collide with probability about 2^-64 per change, far below the chance
//! of a disk error; a collision would keep the previous content of that file.

use std::path::Path;
use std::sync::Arc;

use crate::config::{ConfigDocument, ConfigError, ExperimentConfig, RawFile};

use super::Snapshot;

/// One file as parsed for a snapshot (only files that parsed cleanly).
#[derive(Debug, Clone)]
pub(crate) struct CachedFile {
    path: Arc<Path>,
    len: usize,
    hash: u64,
    /// The document without its experiments.
    decls: Arc<ConfigDocument>,
    /// Its experiments' keys, in file order (the snapshot's experiments).
    keys: Box<[Arc<str>]>,
}

/// A document parsed now, its experiments taken out, each moved behind the
/// `Arc` the compiled experiment will hold (`Experiment::config`): compiling
/// shares them instead of copying every config and dropping the parsed one.
pub(super) struct Parsed {
    /// The document without its experiments.
    decls: ConfigDocument,
    /// Its experiments, in file order.
    experiments: Vec<Arc<ExperimentConfig>>,
}

impl From<ConfigDocument> for Parsed {
    fn from(mut doc: ConfigDocument) -> Parsed {
        let experiments = std::mem::take(&mut doc.experiments);
        Parsed {
            decls: doc,
            experiments: experiments.into_iter().map(Arc::new).collect(),
        }
    }
}

/// What a reload has of one file.
pub(super) enum Content {
    /// Parsed now: the document as far as it could be read.
    Parsed(Option<Parsed>),
    /// Bytes unchanged since the served snapshot.
    Cached(CachedFile),
}

/// One file of a reload: its content and problems.
pub(super) struct ReadFile {
    pub(super) path: Arc<Path>,
    pub(super) content: Content,
    pub(super) problems: Vec<ConfigError>,
    hash: u64,
    len: usize,
}

impl ReadFile {
    /// Taken from the cache: the bytes equal those the served snapshot parsed.
    pub(super) fn unchanged(&self) -> bool {
        matches!(self.content, Content::Cached(_))
    }

    /// The declarations to compile and the experiments, in file order (those
    /// of a cached file from `previous`, which holds every one of them); `None`
    /// when the file could not be read as a whole.
    pub(super) fn parts<'a>(
        &'a self,
        previous: Option<&'a Snapshot>,
    ) -> Option<(&'a ConfigDocument, Vec<&'a Arc<ExperimentConfig>>)> {
        match &self.content {
            Content::Parsed(None) => None,
            Content::Parsed(Some(p)) => Some((&p.decls, p.experiments.iter().collect())),
            Content::Cached(c) => {
                let previous = previous?;
                let configs = c
                    .keys
                    .iter()
                    .filter_map(|k| previous.experiment(k).map(|e| &e.config))
                    .collect();
                Some((&c.decls, configs))
            }
        }
    }

    /// The cache entry for this file in `snap` (compiled from it), if it
    /// parsed cleanly. Consumes the parsed document: its experiments' configs
    /// are shared with `snap`'s experiments.
    pub(super) fn into_cached(self, snap: &Snapshot) -> Option<CachedFile> {
        if !self.problems.is_empty() {
            return None;
        }
        match self.content {
            Content::Cached(c) => Some(c),
            Content::Parsed(None) => None,
            Content::Parsed(Some(Parsed { decls, experiments })) => {
                let keys = experiments
                    .iter()
                    .map(|c| {
                        snap.experiment(&c.experiment_id)
                            .map_or_else(|| Arc::from(c.experiment_id.as_str()), |e| e.key.clone())
                    })
                    .collect();
                Some(CachedFile {
                    path: self.path,
                    len: self.len,
                    hash: self.hash,
                    decls: Arc::new(decls),
                    keys,
                })
            }
        }
    }
}

/// Parses `raw` (in order), except the files whose bytes equal those of an
/// entry of the served snapshot's cache (sorted by path, as files are read).
/// Files that changed parse on two threads when large (see `parse_parallel`).
pub(super) fn parse(raw: &[RawFile], previous: Option<&Snapshot>) -> Vec<ReadFile> {
    let cache = previous.map_or(&[][..], |p| &p.sources[..]);
    let mut out: Vec<ReadFile> = raw
        .iter()
        .map(|f| {
            let (len, hash) = (f.bytes.len(), seahash::hash(&f.bytes));
            let hit = cache
                .binary_search_by(|c| (*c.path).cmp(&f.path))
                .ok()
                .map(|i| &cache[i])
                .filter(|c| c.len == len && c.hash == hash)
                // Always true (the served snapshot compiled from this file);
                // checked so that a cached file can never lose an experiment.
                .filter(|c| {
                    previous.is_some_and(|p| c.keys.iter().all(|k| p.experiment(k).is_some()))
                });
            ReadFile {
                path: hit.map_or_else(|| Arc::from(f.path.as_path()), |c| c.path.clone()),
                content: match hit {
                    Some(c) => Content::Cached(c.clone()),
                    None => Content::Parsed(None),
                },
                problems: Vec::new(),
                hash,
                len,
            }
        })
        .collect();
    let misses: Vec<&RawFile> = raw
        .iter()
        .zip(&out)
        .filter(|(_, r)| !r.unchanged())
        .map(|(f, _)| f)
        .collect();
    let parsed = crate::config::parse_parallel::parse_all(&misses);
    for (r, (doc, problems)) in out.iter_mut().filter(|r| !r.unchanged()).zip(parsed) {
        r.content = Content::Parsed(doc.map(Parsed::from));
        r.problems = problems;
    }
    out
}
