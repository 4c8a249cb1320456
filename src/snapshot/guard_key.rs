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

use std::collections::BTreeMap;
use std::hash::Hasher as _;

use serde::Serialize;

use crate::config::{
    AssignmentConfig, EvaluationPlan, ExperimentConfig, LayerMembership, Metrics, RampStep,
    RollbackPolicy, SrmConfig, Status, Targeting, VariantConfig,
};

// `ExperimentConfig` serialises its fields in declaration order, and the
// assigning ones (`status` to `holdout`) are consecutive: serialising the
// fields before them (`Head`), them (`Assigning`) and the fields after them
// (`Tail`) apart, each with the same names and skip rules as
// `ExperimentConfig`, gives the pieces of its compact JSON. The experiment's
// serialisation (which the snapshot version hashes) is those pieces joined,
// checked against `serde_json::to_vec` in debug builds on every compile, so the
// guard key costs no second serialisation.

/// The fields before the assigning ones.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    experiment_id: &'a String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
}

/// The fields of an experiment that decide which units it enrols and how.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Assigning<'a> {
    status: &'a Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic_allocation: &'a Option<f64>,
    #[serde(skip_serializing_if = "<[RampStep]>::is_empty")]
    traffic_schedule: &'a [RampStep],
    variants: &'a [VariantConfig],
    #[serde(skip_serializing_if = "Option::is_none")]
    default_variant: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: &'a Option<String>,
    assignment: &'a AssignmentConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    targeting: &'a Option<Targeting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: &'a Option<LayerMembership>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout: &'a Option<String>,
}

/// The fields after the assigning ones.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: &'a Option<Metrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation: &'a Option<EvaluationPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: &'a Option<RollbackPolicy>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    srm: &'a Option<SrmConfig>,
}

fn split(c: &ExperimentConfig) -> (Head<'_>, Assigning<'_>, Tail<'_>) {
    // Exhaustive on purpose (see the module's documentation).
    let ExperimentConfig {
        experiment_id,
        name,
        description,
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
        metrics,
        evaluation,
        rollback,
        labels,
        srm,
    } = c;
    (
        Head {
            experiment_id,
            name,
            description,
        },
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
        },
        Tail {
            metrics,
            evaluation,
            rollback,
            labels,
            srm,
        },
    )
}

/// The two hashes of one experiment.
pub(super) struct Hashes {
    /// SeaHash of `canonical` followed by `deps` (see the module documentation).
    pub(super) fingerprint: u64,
    /// SeaHash of the assigning fields' JSON followed by `deps`.
    pub(super) guard: u64,
}

/// Writes `c`'s compact JSON (exactly `serde_json::to_vec(c)`) into
/// `canonical` (its content is replaced) and returns its hashes, with the
/// declarations it uses serialised in `deps`. `scratch` is a buffer reused
/// from one experiment to the next.
pub(super) fn serialise(
    c: &ExperimentConfig,
    deps: &[u8],
    canonical: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Hashes {
    let (head, assigning, tail) = split(c);
    // Serialising plain data into a `Vec` does not fail (a failure would only
    // make the bytes differ, which the debug check below reports).
    canonical.clear();
    let _ = serde_json::to_writer(&mut *canonical, &head);
    canonical.pop(); // `}`
    scratch.clear();
    let _ = serde_json::to_writer(&mut *scratch, &assigning);
    // `status` is always written, so the object is never empty: `{…}`.
    canonical.push(b',');
    canonical.extend_from_slice(&scratch[1..scratch.len() - 1]);
    let assigning_end = scratch.len();
    let _ = serde_json::to_writer(&mut *scratch, &tail);
    match &scratch[assigning_end..] {
        [b'{', b'}'] => canonical.push(b'}'),
        [b'{', rest @ ..] => {
            canonical.push(b',');
            canonical.extend_from_slice(rest);
        }
        other => canonical.extend_from_slice(other),
    }
    debug_assert_eq!(
        String::from_utf8_lossy(canonical),
        String::from_utf8_lossy(&serde_json::to_vec(c).unwrap_or_default()),
        "the pieces of an experiment's JSON join to its whole serialisation"
    );
    scratch.truncate(assigning_end);
    scratch.extend_from_slice(deps);
    // Streaming SeaHash equals SeaHash of the concatenation (the crate's
    // `chunked_equiv` tests): no joined buffer is built.
    let mut fp = seahash::SeaHasher::new();
    fp.write(canonical);
    fp.write(deps);
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
        let deps = br#"{"include":["a:b"]}"#;
        let mut canonical = Vec::new();
        let h = serialise(&c, deps, &mut canonical, &mut Vec::new());
        assert_eq!(canonical, serde_json::to_vec(&c).unwrap());
        let joined = [&canonical[..], &deps[..]].concat();
        assert_eq!(h.fingerprint, seahash::hash(&joined));
    }

    #[test]
    fn the_pieces_join_to_the_whole_serialisation() {
        for text in [
            r#"{"key":"a","status":"draft","variants":["x"]}"#,
            r#"{"key":"a","name":"A \"q\"","description":"d","status":"running","trafficAllocation":0.25,
                "trafficSchedule":[{"at":"2026-01-01T00:00:00Z","trafficAllocation":0.5,"allowDecrease":true}],
                "variants":[{"key":"x","weight":2,"value":{"k":[1,2]}},{"key":"y"}],"defaultVariant":"y","winner":"x",
                "assignment":{"salt":"s","hashKey":"u","strategy":"consistent_hash","epoch":3},
                "targeting":{"include":["a:b"],"exclude":["c:d"],"segments":["s"],
                             "rules":[{"attribute":"v","op":"semver_gt","value":"1.2.3"}]},
                "layer":{"key":"l","range":[0,0.5]},"holdout":"h",
                "metrics":{"primary":{"name":"m","type":"conversion","direction":"increase"},
                           "secondary":[{"name":"n","type":"count","direction":"decrease"}]},
                "evaluation":{"alpha":0.05,"maxPeeks":3},
                "labels":{"team":"t","tier":"1"},"srm":{"strata":"region"}}"#,
            r#"{"key":"a","status":"paused","variants":["x"],"labels":{"z":"1"}}"#,
        ] {
            let c = cfg(text);
            let mut canonical = Vec::new();
            serialise(&c, b"", &mut canonical, &mut Vec::new());
            assert_eq!(
                String::from_utf8(canonical).unwrap(),
                serde_json::to_string(&c).unwrap()
            );
        }
    }

    #[test]
    fn the_guard_key_ignores_only_fields_that_move_nobody() {
        let key = |text: &str| {
            let c = cfg(text);
            serialise(&c, b"", &mut Vec::new(), &mut Vec::new()).guard
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
        assert_ne!(
            serialise(&c, b"", &mut Vec::new(), &mut Vec::new()).guard,
            serialise(&c, b"{}", &mut Vec::new(), &mut Vec::new()).guard,
            "a used declaration that changes changes the key"
        );
    }
}
