//! What a config change does to each experiment's cohort: the causes, and the
//! fractions of units that change variant, leave or join.
//!
//! Fractions are exact expectations from the configs (see [`super::exact`]) over the
//! *eligible* population: units with a unit id that pass targeting in both configs.
//! A targeting change is reported as a cause whose effect depends on real
//! attributes and is not estimated. [`super::simulate`] cross-checks the numbers on
//! a synthetic population.

use std::path::PathBuf;

use serde::Serialize;

// Re-exported: `Cause` is part of what a diff returns.
pub use super::cause::Cause;
use super::exact::{self, Interval, FULL};
use crate::config::Status;
use crate::engine::bucket::SLOTS;
use crate::snapshot::{Experiment, SlotRange, Snapshot};

/// One side of a comparison: the facts about an experiment in one config.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// Lifecycle status.
    pub status: Status,
    /// `assignment.epoch`.
    pub epoch: u32,
    /// Fingerprint of the salt.
    pub salt_fingerprint: String,
    /// Traffic allocation in force at the comparison time.
    pub traffic: f64,
    /// Fraction of eligible units enrolled.
    pub enrolled: f64,
}

/// Fractions of the eligible population (units with a unit id that pass
/// targeting in both configs), exact under the hash model of [`super::exact`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    /// Enrolled before and after, keeping their variant.
    pub kept: f64,
    /// Enrolled before and after, with a different variant.
    pub moved: f64,
    /// What `moved` would be if only the variant set and weights had changed
    /// (same draws): the movement the change itself requires under rendezvous.
    pub required_moved: f64,
    /// The total-variation distance between the variant shares, scaled to the
    /// units enrolled in both: the least any algorithm would move.
    pub min_moved: f64,
    /// Enrolled before, not after.
    pub left: f64,
    /// Enrolled after, not before.
    pub joined: f64,
}

/// Everything that changes for one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentDiff {
    /// Experiment key.
    pub key: String,
    /// The file that defines it (new config, or old when removed).
    pub file: PathBuf,
    /// The experiment in the old config.
    pub before: Option<Side>,
    /// The experiment in the new config.
    pub after: Option<Side>,
    /// Why it changes, in config order of fields.
    pub causes: Vec<Cause>,
    /// Exact fractions.
    pub impact: Impact,
}

impl ExperimentDiff {
    /// Whether the experiment enrols in the old config (`running`).
    pub fn was_running(&self) -> bool {
        self.before
            .as_ref()
            .is_some_and(|s| s.status == Status::Running)
    }

    /// Whether the experiment enrols in the new config.
    pub fn is_running(&self) -> bool {
        self.after
            .as_ref()
            .is_some_and(|s| s.status == Status::Running)
    }

    /// A fraction of eligible units as a fraction of the units enrolled before.
    pub fn of_enrolled(&self, x: f64) -> f64 {
        ratio(x, self.before.as_ref().map_or(0.0, |s| s.enrolled))
    }

    /// Fraction of the units enrolled before that would change variant.
    pub fn moved_of_enrolled(&self) -> f64 {
        self.of_enrolled(self.impact.moved)
    }

    /// Fraction of the units enrolled before that would leave the experiment.
    pub fn left_of_enrolled(&self) -> f64 {
        self.of_enrolled(self.impact.left)
    }

    /// Whether the epoch rose (the config acknowledges a reshuffle).
    pub fn epoch_bumped(&self) -> bool {
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => a.epoch > b.epoch,
            _ => false,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b).min(1.0)
    } else {
        0.0
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDiff {
    /// Version of the old config.
    pub old_version: String,
    /// Version of the new config.
    pub new_version: String,
    /// Unix seconds at which schedules were evaluated.
    pub at: i64,
    /// Experiments that differ, sorted by key; unchanged ones are left out.
    pub experiments: Vec<ExperimentDiff>,
}

/// Compares two snapshots, evaluating ramp schedules at `at` (Unix seconds).
///
/// Both snapshots list experiments sorted by key, so one merge walk pairs them;
/// an unchanged experiment costs one comparison of the fingerprint hashes held
/// inline in both (see [`same_fingerprint`]), and only the changed ones are
/// compared in full.
pub fn diff(old: &Snapshot, new: &Snapshot, at: i64) -> SnapshotDiff {
    diff_unless(old, new, at, same_fingerprint)
}

/// [`diff`] leaving out the experiments whose changes move no unit (equal
/// guard keys: only a name, description, metrics, labels, ... changed), whose
/// comparison would find no cause and no movement: what the cohort guard
/// judges on a reload ([`super::guard::check_reload`]).
pub fn assigning_diff(old: &Snapshot, new: &Snapshot, at: i64) -> SnapshotDiff {
    diff_unless(old, new, at, |o, n| o.guard_key == n.guard_key)
}

/// The comparison of every pair of one key for which `same` is false, and of
/// every experiment found on one side only.
fn diff_unless(
    old: &Snapshot,
    new: &Snapshot,
    at: i64,
    same: impl Fn(&Experiment, &Experiment) -> bool,
) -> SnapshotDiff {
    let mut experiments = Vec::new();
    for pair in paired(old.experiments(), new.experiments()) {
        match pair {
            (Some(o), Some(n)) if same(o, n) => {}
            (o, n) => experiments.push(diff_experiment(old, o, new, n, at)),
        }
    }
    SnapshotDiff {
        old_version: old.version().to_owned(),
        new_version: new.version().to_owned(),
        at,
        experiments,
    }
}

/// Whether two experiments have equal fingerprints: their hashes, held inline
/// (`Experiment::fingerprint` is that hash in hex), so an unchanged experiment
/// costs no read of memory outside the snapshots' experiment arrays.
pub fn same_fingerprint(o: &Experiment, n: &Experiment) -> bool {
    o.fingerprint_hash == n.fingerprint_hash
}

/// The union of two key-sorted experiment lists in key order, each key paired
/// with its experiment in `old` and in `new`.
pub fn paired<'a>(
    old: &'a [Experiment],
    new: &'a [Experiment],
) -> impl Iterator<Item = (Option<&'a Experiment>, Option<&'a Experiment>)> {
    let (mut o, mut n) = (old.iter().peekable(), new.iter().peekable());
    std::iter::from_fn(move || match (o.peek(), n.peek()) {
        (None, None) => None,
        (Some(_), None) => Some((o.next(), None)),
        (None, Some(_)) => Some((None, n.next())),
        (Some(a), Some(b)) => match a.key.cmp(&b.key) {
            std::cmp::Ordering::Less => Some((o.next(), None)),
            std::cmp::Ordering::Greater => Some((None, n.next())),
            std::cmp::Ordering::Equal => Some((o.next(), n.next())),
        },
    })
}

/// The gates of an experiment: (holdout, layer, traffic) intervals.
fn gates(e: &Experiment, at: i64) -> [Interval; 3] {
    [
        e.holdout.as_ref().map_or(FULL, |h| (h.end, SLOTS)),
        e.layer.as_ref().map_or(FULL, |l| (l.start, l.end)),
        (0, e.traffic_at(Some(at))),
    ]
}

fn enrolled(e: &Experiment, at: i64) -> f64 {
    if e.status != Status::Running {
        return 0.0;
    }
    gates(e, at).iter().map(|&g| exact::length(g)).product()
}

fn same_range_draw(a: Option<&SlotRange>, b: Option<&SlotRange>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.draw == b.draw && a.hash_key == b.hash_key,
        // A missing gate is passed by everyone: overlap and product agree.
        _ => true,
    }
}

fn weights(e: &Experiment) -> Vec<(&str, f64)> {
    e.variants.iter().map(|v| (&*v.key, v.weight)).collect()
}

fn same_variant_draws(o: &Experiment, n: &Experiment) -> bool {
    o.salt() == n.salt()
        && o.hash_key == n.hash_key
        && o.config.assignment.strategy == n.config.assignment.strategy
}

fn impact(o: Option<&Experiment>, n: Option<&Experiment>, at: i64) -> Impact {
    let before = o.map_or(0.0, |e| enrolled(e, at));
    let after = n.map_or(0.0, |e| enrolled(e, at));
    let (Some(o), Some(n)) = (o, n) else {
        return Impact {
            left: before,
            joined: after,
            ..Impact::default()
        };
    };
    let in_both = if o.status == Status::Running && n.status == Status::Running {
        let (go, gn) = (gates(o, at), gates(n, at));
        let same = [
            same_range_draw(o.holdout.as_ref(), n.holdout.as_ref()),
            same_range_draw(o.layer.as_ref(), n.layer.as_ref()),
            o.traffic_draw == n.traffic_draw && o.hash_key == n.hash_key,
        ];
        (0..3).map(|i| exact::both(go[i], gn[i], same[i])).product()
    } else {
        0.0
    };
    let (wo, wn) = (weights(o), weights(n));
    let required_keep = exact::rendezvous_keep(&wo, &wn);
    let keep = if same_variant_draws(o, n) {
        required_keep
    } else {
        exact::independent_keep(&wo, &wn)
    };
    Impact {
        kept: in_both * keep,
        moved: in_both * (1.0 - keep),
        required_moved: in_both * (1.0 - required_keep),
        min_moved: in_both * exact::total_variation(&wo, &wn),
        left: (before - in_both).max(0.0),
        joined: (after - in_both).max(0.0),
    }
}

fn side(e: &Experiment, at: i64) -> Side {
    Side {
        status: e.status,
        epoch: e.epoch,
        salt_fingerprint: e.salt_fingerprint.to_string(),
        traffic: e.traffic_allocation_at(at),
        enrolled: enrolled(e, at),
    }
}

/// Whether `o` and `n` target the same units: the typed targeting and the
/// segments it uses compared first (cheap, and what almost every reload finds),
/// and only when they differ the serialized [`targeting_signature`]s, which
/// decide as before (typed equality implies equal signatures, so the answer is
/// the same; the signatures cost a JSON tree per experiment, most of the cohort
/// guard's time on a reload of 10,000 experiments).
fn same_targeting(os: &Snapshot, o: &Experiment, ns: &Snapshot, n: &Experiment) -> bool {
    let typed_equal =
        o.config.targeting == n.config.targeting && used_segments(os, o).eq(used_segments(ns, n));
    typed_equal || targeting_signature(os, o) == targeting_signature(ns, n)
}

/// The definitions of the segments `e`'s targeting uses, in order.
fn used_segments<'a>(
    s: &'a Snapshot,
    e: &'a Experiment,
) -> impl Iterator<Item = Option<&'a crate::config::Targeting>> {
    let defined = &s.document().segments;
    e.config
        .targeting
        .iter()
        .flat_map(|t| &t.segments)
        .map(move |name| defined.get(name))
}

/// The targeting as written plus the segments it uses, for comparison.
fn targeting_signature(s: &Snapshot, e: &Experiment) -> serde_json::Value {
    let segs: Vec<_> = e
        .config
        .targeting
        .iter()
        .flat_map(|t| &t.segments)
        .map(|name| (name, s.document().segments.get(name)))
        .collect();
    serde_json::json!({ "targeting": e.config.targeting, "segments": segs })
}

fn range_cause(
    what: &str,
    o: Option<&SlotRange>,
    n: Option<&SlotRange>,
    describe: impl Fn(&SlotRange) -> String,
) -> Option<(bool, String)> {
    match (o, n) {
        (None, None) => None,
        (None, Some(n)) => Some((false, format!("{what} `{}` added ({})", n.key, describe(n)))),
        (Some(o), None) => Some((false, format!("{what} `{}` removed", o.key))),
        (Some(o), Some(n)) => {
            let mut parts = Vec::new();
            if o.key != n.key {
                parts.push(format!("{what} `{}` -> `{}`", o.key, n.key));
            } else if o.draw != n.draw {
                parts.push(format!("{what} `{}` salt changed", n.key));
            }
            if o.hash_key != n.hash_key {
                parts.push(format!("hashKey {} -> {}", o.hash_key, n.hash_key));
            }
            let mut redraw = !parts.is_empty();
            if (o.start, o.end) != (n.start, n.end) {
                // Nested ranges only add or only drop units; otherwise some
                // enrolled units are replaced by others.
                let nested = (n.start <= o.start && o.end <= n.end)
                    || (o.start <= n.start && n.end <= o.end);
                redraw |= !nested;
                parts.push(format!(
                    "{} -> {}{}",
                    describe(o),
                    describe(n),
                    if nested {
                        ""
                    } else {
                        " (moved: replaces units)"
                    }
                ));
            }
            (!parts.is_empty()).then(|| (redraw, parts.join(", ")))
        }
    }
}

/// A slot threshold as the fraction it was written as: thresholds are within
/// 2^-32 of it, so six decimals recover it.
fn frac(slots: u64) -> String {
    let s = format!("{:.6}", slots as f64 / SLOTS as f64);
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

fn causes(os: &Snapshot, o: &Experiment, ns: &Snapshot, n: &Experiment, at: i64) -> Vec<Cause> {
    let mut c = Vec::new();
    if o.status != n.status {
        c.push(Cause::StatusChanged {
            from: o.status,
            to: n.status,
        });
    }
    if o.salt() != n.salt() {
        c.push(Cause::SaltChanged {
            from: o.salt_fingerprint.to_string(),
            to: n.salt_fingerprint.to_string(),
        });
    }
    if o.hash_key != n.hash_key {
        c.push(Cause::HashKeyChanged {
            from: o.hash_key.to_string(),
            to: n.hash_key.to_string(),
        });
    }
    let (so, sn) = (o.config.assignment.strategy, n.config.assignment.strategy);
    if so != sn {
        c.push(Cause::StrategyChanged { from: so, to: sn });
    }
    for v in n.variants.iter() {
        match o.variant(&v.key) {
            None => c.push(Cause::VariantAdded {
                key: v.key.to_string(),
            }),
            Some(p) => {
                if p.weight != v.weight {
                    c.push(Cause::VariantReweighted {
                        key: v.key.to_string(),
                        from: p.weight,
                        to: v.weight,
                    });
                }
                if p.value != v.value {
                    c.push(Cause::VariantValueChanged {
                        key: v.key.to_string(),
                    });
                }
            }
        }
    }
    for v in o.variants.iter() {
        if n.variant(&v.key).is_none() {
            c.push(Cause::VariantRemoved {
                key: v.key.to_string(),
            });
        }
    }
    let order = |a: &Experiment, b: &Experiment| -> Vec<String> {
        a.variants
            .iter()
            .filter(|v| b.variant(&v.key).is_some())
            .map(|v| v.key.to_string())
            .collect()
    };
    if order(o, n) != order(n, o) {
        c.push(Cause::VariantsReordered);
    }
    let (dfo, dfn) = (
        &o.variants[o.default_variant].key,
        &n.variants[n.default_variant].key,
    );
    if dfo != dfn {
        c.push(Cause::DefaultVariantChanged {
            from: dfo.to_string(),
            to: dfn.to_string(),
        });
    }
    let win = |e: &Experiment| e.winner.map(|w| e.variants[w].key.to_string());
    if win(o) != win(n) {
        c.push(Cause::WinnerChanged {
            from: win(o),
            to: win(n),
        });
    }
    let (to, tn) = (o.traffic_at(Some(at)), n.traffic_at(Some(at)));
    if tn > to {
        c.push(Cause::TrafficRaised {
            from: o.traffic_allocation_at(at),
            to: n.traffic_allocation_at(at),
        });
    } else if tn < to {
        c.push(Cause::TrafficLowered {
            from: o.traffic_allocation_at(at),
            to: n.traffic_allocation_at(at),
        });
    }
    if o.config.traffic_schedule != n.config.traffic_schedule {
        c.push(Cause::ScheduleChanged {
            lowers_from: first_lower(o, n, at).map(crate::snapshot::schedule::format_time),
        });
    }
    if !same_targeting(os, o, ns, n) {
        c.push(Cause::TargetingChanged);
    }
    let layer = |l: &SlotRange| format!("range [{}, {})", frac(l.start), frac(l.end));
    if let Some((redraw, detail)) = range_cause("layer", o.layer.as_ref(), n.layer.as_ref(), layer)
    {
        c.push(Cause::LayerChanged { redraw, detail });
    }
    let hold = |h: &SlotRange| format!("fraction {}", frac(h.end));
    if let Some((redraw, detail)) =
        range_cause("holdout", o.holdout.as_ref(), n.holdout.as_ref(), hold)
    {
        c.push(Cause::HoldoutChanged { redraw, detail });
    }
    if o.epoch != n.epoch {
        c.push(Cause::EpochChanged {
            from: o.epoch,
            to: n.epoch,
        });
    }
    c
}

/// The first time `t >= at` (the comparison time or a later step of either
/// schedule) at which `n` enrols less than `o`.
fn first_lower(o: &Experiment, n: &Experiment, at: i64) -> Option<i64> {
    let mut times: Vec<i64> = o
        .schedule
        .iter()
        .chain(n.schedule.iter())
        .map(|p| p.at)
        .filter(|&t| t > at)
        .collect();
    times.push(at);
    times.sort_unstable();
    times
        .into_iter()
        .find(|&t| n.traffic_at(Some(t)) < o.traffic_at(Some(t)))
}

fn diff_experiment(
    os: &Snapshot,
    o: Option<&Experiment>,
    ns: &Snapshot,
    n: Option<&Experiment>,
    at: i64,
) -> ExperimentDiff {
    let causes = match (o, n) {
        (Some(o), Some(n)) => causes(os, o, ns, n, at),
        (None, _) => vec![Cause::ExperimentAdded],
        (_, None) => vec![Cause::ExperimentRemoved],
    };
    let file = n.or(o).map(|e| e.source.to_path_buf()).unwrap_or_default();
    ExperimentDiff {
        key: n.or(o).map(|e| e.key.to_string()).unwrap_or_default(),
        file,
        before: o.map(|e| side(e, at)),
        after: n.map(|e| side(e, at)),
        causes,
        impact: impact(o, n, at),
    }
}
