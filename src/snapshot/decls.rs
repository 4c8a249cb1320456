//! What an experiment compiles from besides its own config: the shared
//! declarations of the whole config (segments, layers, holdouts) and the file
//! that defines it. [`super::compile`] gathers them; [`super::reuse`] compares
//! them with the served snapshot's to copy an experiment instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::{ExperimentConfig, HoldoutConfig, LayerConfig, Targeting};

/// The shared declarations of a whole config, by key: what an experiment may
/// use besides its own config (its segments, its layer, its holdout).
pub(super) struct Decls<'a> {
    pub(super) segments: BTreeMap<String, Targeting>,
    pub(super) layers: BTreeMap<String, (&'a Path, &'a LayerConfig)>,
    pub(super) holdouts: BTreeMap<String, (&'a Path, &'a HoldoutConfig)>,
}

/// An experiment's config and the file that defines it.
pub(super) struct Owned<'a> {
    pub(super) file: &'a Arc<Path>,
    /// Shared with the compiled experiment (`Experiment::config`).
    pub(super) cfg: &'a Arc<ExperimentConfig>,
    /// The file's bytes are those the previous snapshot parsed.
    pub(super) unchanged: bool,
}
