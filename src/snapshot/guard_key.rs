//! Per-experiment hashes made once at compile time, so that comparing two
//! snapshots (the cohort guard and `Store::install` on every reload) reads two
//! `u64`s held inline in each experiment instead of following pointers to
//! strings and configs scattered over the heap.
//!
//! * The **fingerprint hash**: SeaHash of the experiment's compact JSON followed
//!   by the declarations it uses (segments, layer, holdout). Its 16 hex digits
//!   are `Experiment::fingerprint`, so equal hashes are equal fingerprints.
//! * The **guard key**: the same, leaving out the fields that cannot move a unit
//!   (`name`, `description`, `metrics`, `evaluation`, `rollback`, `labels`,
//!   `srm`). Two experiments of one key with equal guard keys have equal
//!   status, traffic, schedule, variants (keys, weights, values), default,
//!   winner, assignment (salt, attribute, strategy, epoch), targeting, layer and
//!   holdout, and the same declarations of the segments, layer and holdout they
//!   use: the guard's comparison finds no cause and moves, drops and adds nobody,
//!   so its verdict is "safe" with nothing to say (`tests/reload_guard_key.rs`
//!   checks this against the full comparison). The guard skips such pairs; on a
//!   reload that rewrites every experiment's name, that is all of them.
//!
//! The field list is an exhaustive destructuring of `ExperimentConfig`: a new
//! field does not compile until it is placed on one side or the other.
//! Both hashes are compared only within one process (never exported), yet they
//! are deterministic (SeaHash's fixed seeds).

use std::hash::Hasher as _;

use serde::Serialize;

use crate::config::{
    AssignmentConfig, ExperimentConfig, LayerMembership, RampStep, Status, Targeting,
    VariantConfig,
};

/// The fields of an experiment that decide which units it enrols and how.
#[derive(Serialize)]
struct Assigning<'a> {
    status: &'a Status,
    traffic_allocation: &'a Option<f64>,
    traffic_schedule: &'a [RampStep],
    variants: &'a [VariantConfig],
    default_variant: &'a Option<String>,
    winner: &'a Option<String>,
    assignment: &'a AssignmentConfig,
    targeting: &'a Option<Targeting>,
    layer: &'a Option<LayerMembership>,
    holdout: &'a Option<String>,
}

fn assigning(c: &ExperimentConfig) -> Assigning<'_> {
    // Exhaustive on purpose (see the module's documentation).
    let ExperimentConfig {
        experiment_id: _,
        name: _,
        description: _,
        metrics: _,
        evaluation: _,
        rollback: _,
        labels: _,
        srm: _,
        status,
        traffic_allocation,
        traffic_schedule,
        variants,
        default_variant,
        winner,
        assignment,
        targeting,
        layer,
        holdout,
    } = c;
    Assigning {
        status,
        traffic_allocation,
        traffic_schedule,
        variants,
        default_variant,
        winner,
        assignment,
        targeting,
        layer,
        holdout,
    }
}

/// The two hashes of one experiment.
pub(super) struct Hashes {
    /// SeaHash of `canonical` followed by `deps` (see the module documentation).
    pub(super) fingerprint: u64,
    /// SeaHash of the assigning fields' JSON followed by `deps`.
    pub(super) guard: u64,
}

/// Hashes of `c`, whose compact JSON is `canonical`, using the declarations
/// serialised in `deps`. `scratch` is a buffer reused from one experiment to
/// the next (its content is replaced): hashing one buffer is several times
/// cheaper than feeding a streaming hasher serde's many small writes.
pub(super) fn hashes(
    c: &ExperimentConfig,
    canonical: &[u8],
    deps: &[u8],
    scratch: &mut Vec<u8>,
) -> Hashes {
    // Streaming SeaHash equals SeaHash of the concatenation (the crate's
    // `chunked_equiv` tests): no joined buffer is built for two large writes.
    let mut fp = seahash::SeaHasher::new();
    fp.write(canonical);
    fp.write(deps);
    scratch.clear();
    // Serialising plain data into a `Vec` does not fail; were it to, the key
    // would differ from its twin's and the guard would compare the experiment
    // in full, which is always correct.
    let _ = serde_json::to_writer(&mut *scratch, &assigning(c));
    scratch.extend_from_slice(deps);
    Hashes {
        fingerprint: fp.finish(),
        guard: seahash::hash(scratch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> ExperimentConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn fingerprint_hash_is_seahash_of_the_joined_bytes() {
        let c = cfg(r#"{"key":"a","status":"running","variants":[{"key":"x"}]}"#);
        let canonical = serde_json::to_vec(&c).unwrap();
        let deps = br#"{"include":["a:b"]}"#;
        let joined = [&canonical[..], &deps[..]].concat();
        assert_eq!(
            hashes(&c, &canonical, deps, &mut Vec::new()).fingerprint,
            seahash::hash(&joined)
        );
    }

    #[test]
    fn the_guard_key_ignores_only_fields_that_move_nobody() {
        let key = |text: &str| {
            let c = cfg(text);
            hashes(&c, &serde_json::to_vec(&c).unwrap(), b"", &mut Vec::new()).guard
        };
        let base = key(r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}]}"#);
        for same in [
            r#"{"key":"a","name":"A","description":"d","status":"running","variants":[{"key":"x"},{"key":"y"}]}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}],"labels":{"team":"t"},"srm":{"strata":"region"}}"#,
        ] {
            assert_eq!(key(same), base, "{same}");
        }
        for differs in [
            r#"{"key":"a","status":"paused","variants":[{"key":"x"},{"key":"y"}]}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"y"},{"key":"x"}]}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x","weight":2},{"key":"y"}]}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}],"assignment":{"salt":"s"}}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}],"assignment":{"epoch":1}}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}],"trafficAllocation":0.5}"#,
            r#"{"key":"a","status":"running","variants":[{"key":"x"},{"key":"y"}],"targeting":{"include":["a:b"]}}"#,
        ] {
            assert_ne!(key(differs), base, "{differs}");
        }
        let c = cfg(r#"{"key":"a","status":"running","variants":[{"key":"x"}]}"#);
        let canonical = serde_json::to_vec(&c).unwrap();
        assert_ne!(
            hashes(&c, &canonical, b"", &mut Vec::new()).guard,
            hashes(&c, &canonical, b"{}", &mut Vec::new()).guard,
            "a used declaration that changes changes the key"
        );
    }
}
