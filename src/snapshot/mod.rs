//! The compiled, immutable snapshot that requests evaluate against.
//!
//! Compiling ([`compile`]) does every expensive and fallible step once: it
//! validates, resolves defaults, derives hash seeds, compiles targeting and
//! computes a content-derived version. A [`Snapshot`] is never mutated; a reload
//! builds a new one and swaps it.
//!
//! * [`experiment`]: one compiled experiment (variants, layer, holdout, ramp);
//! * [`targeting`]: compiled targeting rules;
//! * [`schedule`]: ramp schedules (the traffic threshold in force at a time);
//! * [`compile`]: config documents to a snapshot, with every error reported.

pub mod compile;
mod decls;
pub mod experiment;
pub mod flagd;
mod guard_key;
mod key_index;
pub mod listing;
mod reuse;
pub mod schedule;
pub mod selector;
mod sources;
pub mod targeting;
mod targeting_cache;
mod version;

use crate::config::ConfigDocument;
pub use experiment::{Experiment, SlotRange, Variant};

/// The default unit attribute: OpenFeature's targeting key.
pub const DEFAULT_HASH_KEY: &str = "targetingKey";

/// An immutable, compiled config. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(super) version: Box<str>,
    pub(super) experiments: Vec<Experiment>,
    pub(super) index: key_index::KeyIndex,
    pub(super) document: ConfigDocument,
    /// Distinct unit attributes of running experiments, most used first, so
    /// assigning everything resolves each unit id once (see `Experiment::unit_key`).
    pub(crate) unit_keys: Box<[Box<str>]>,
    /// The flagd-format flags, beside the experiments (keys never collide).
    pub(super) flagd: flagd::FlagdSet,
    /// The `fractional` form flagd flags bucket with (`serve --flagd-fractional`),
    /// set by the store that serves this snapshot.
    pub(crate) flagd_form: crate::engine::flagd::FractionalForm,
    /// Experiments copied from the snapshot this one replaced (see `reuse`).
    pub(super) reused: usize,
    /// The files it was parsed from, for the next reload (see `sources`);
    /// empty when compiled from documents rather than files.
    pub(super) sources: Box<[sources::CachedFile]>,
    /// Files taken from the replaced snapshot's parse cache (see `sources`).
    pub(super) reused_files: usize,
}

impl Snapshot {
    /// Content-derived version: equal content gives an equal version on every pod.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// All experiments, drafts included, sorted by key.
    pub fn experiments(&self) -> &[Experiment] {
        &self.experiments
    }

    /// Served experiments (not drafts), sorted by key.
    pub fn served(&self) -> impl Iterator<Item = &Experiment> {
        self.experiments.iter().filter(|e| e.is_served())
    }

    /// `"; did you mean `k`?"` naming the served keys closest to an unknown `key`,
    /// or an empty string: for the not-found errors of every API. Runs only on a
    /// miss, over keys whose length the transports already bound.
    pub fn did_you_mean(&self, key: &str) -> String {
        crate::config::suggest::did_you_mean(key, self.served().map(|e| &*e.key))
    }

    /// Looks up an experiment by key, drafts included.
    #[inline]
    pub fn experiment(&self, key: &str) -> Option<&Experiment> {
        self.index.find(key, &self.experiments, |e| &e.key)
    }

    /// The flagd-format flags.
    pub fn flagd(&self) -> &flagd::FlagdSet {
        &self.flagd
    }

    /// The `fractional` form flagd-format flags are evaluated with.
    pub fn flagd_form(&self) -> crate::engine::flagd::FractionalForm {
        self.flagd_form
    }

    /// The same snapshot evaluating flagd `fractional` with `form`.
    pub fn with_flagd_form(mut self, form: crate::engine::flagd::FractionalForm) -> Snapshot {
        self.flagd_form = form;
        self
    }

    /// The merged document this snapshot was compiled from: its segments,
    /// layers and holdouts (sorted by key). Its `experiments` are empty: each
    /// experiment's config is [`Experiment::config`] (not kept twice).
    pub fn document(&self) -> &ConfigDocument {
        &self.document
    }

    /// How many experiments were copied, unchanged, from the served snapshot
    /// when this one was compiled for a reload instead of compiled again (see
    /// [`Snapshot::from_raw_reusing`]); 0 for a snapshot compiled from scratch.
    pub fn reused_experiments(&self) -> usize {
        self.reused
    }

    /// How many config files were not parsed again when this snapshot was
    /// built for a reload, their bytes being those the served snapshot parsed
    /// (see [`Snapshot::from_raw_reusing`]); 0 for a snapshot built from scratch.
    pub fn reused_files(&self) -> usize {
        self.reused_files
    }
}
