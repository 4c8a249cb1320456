//! Reusing the served snapshot's compiled experiments on a reload.
//!
//! Compiling an experiment (draw keys, targeting, fingerprint) is most of a
//! reload's work, and a typical reload changes a few experiments of many: the
//! others are written exactly as before. An experiment compiles from its own
//! config, the file that defines it (named in its errors) and the shared
//! declarations it uses (its segments, its layer, its holdout), nothing else. So
//! when all of these are equal to those of the served snapshot's experiment of
//! the same key, which compiled without errors, compiling it again would give
//! the same experiment and no errors: the served one is copied instead.
//!
//! Only that per-experiment step is skipped. Everything that involves several
//! experiments (duplicate keys, layer overlaps, the unit-key index, the
//! shared-condition memo slots, the version, the flagd flags) and the cohort
//! guard run over the whole new config as before, so a reload's outcome, errors and version are those of a full compile
//! (`tests/reload_reuse.rs` compares them).

use super::decls::{Decls, Owned};
use super::{Experiment, Snapshot};

/// The served experiment `o` would compile to, if nothing it depends on changed:
/// same key, same defining file, an equal config (known without comparing when
/// the file's bytes did not change, see `super::sources`; otherwise compared,
/// and a NaN anywhere makes it unequal, which only means compiling it again),
/// and equal definitions of the segments, layer and holdout it uses. The copy
/// shares every heap part with the served one (see `super::experiment`).
///
/// "Equal" is [`same`]: `==` and the same compact JSON, because the derived
/// `==` holds between `0.0` and `-0.0`, which compile to different text (the
/// experiment's serialisation, its fingerprint, the version, a variant's value).
pub(super) fn compiled_before(
    previous: &Snapshot,
    o: &Owned<'_>,
    decls: &Decls<'_>,
) -> Option<Experiment> {
    let c = o.cfg;
    let old = previous.experiment(&c.experiment_id)?;
    let same_config = o.unchanged
        || std::sync::Arc::ptr_eq(&old.config, c)
        // `canonical` is the served config's compact JSON (`super::guard_key`).
        || (*old.config == **c && serde_json::to_vec(&**c).is_ok_and(|j| *j == *old.canonical));
    if *old.source != **o.file || !same_config {
        return None;
    }
    let doc = previous.document();
    let same_segments = c
        .targeting
        .iter()
        .flat_map(|t| &t.segments)
        .all(|name| same(&doc.segments.get(name), &decls.segments.get(name)));
    // The served document lists layers and holdouts sorted by key, each once.
    let same_layer = c.layer.as_ref().is_none_or(|m| {
        let before = doc
            .layers
            .binary_search_by(|l| l.key.as_str().cmp(&m.key))
            .ok()
            .map(|i| &doc.layers[i]);
        same(&before, &decls.layers.get(&m.key).map(|(_, l)| *l))
    });
    let same_holdout = c.holdout.as_ref().is_none_or(|h| {
        let before = doc
            .holdouts
            .binary_search_by(|d| d.key.as_str().cmp(h))
            .ok()
            .map(|i| &doc.holdouts[i]);
        same(&before, &decls.holdouts.get(h).map(|(_, d)| *d))
    });
    // `unit_key` and the condition memo slots are set again for the new
    // snapshot (`super::compile`).
    (same_segments && same_layer && same_holdout).then(|| old.clone())
}

/// `a == b`, and `a` and `b` serialise to the same compact JSON: the derived
/// `==` compares floats by value, so `0.0 == -0.0`, yet they are written (and so
/// fingerprinted, hashed into the version and served) apart. Serialising runs
/// only for the values `==` already found equal, a few per reused experiment.
fn same<T: PartialEq + serde::Serialize>(a: &T, b: &T) -> bool {
    a == b
        && match (serde_json::to_vec(a), serde_json::to_vec(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}
