//! The cohort guard: which changes to a running experiment are refused.
//!
//! One policy serves both `cohortd diff` (its exit status gates a pull request)
//! and every reload (a refused change keeps the served snapshot). A change is
//! **refused** when an experiment that is `running` before and after, and has
//! enrolled units, would reassign them beyond what the change requires:
//!
//! * a redraw: `assignment.salt`, `assignment.hashKey` or `assignment.strategy`
//!   changed, or the layer or holdout draw changed (key, salt or attribute);
//! * units moving between variants beyond what the new variant set and weights
//!   require under rendezvous (`moved > required_moved`);
//! * a layer range moved so that it both loses and gains slots: some enrolled
//!   units are replaced by others, which changes who is in the cohort.
//!
//! It goes through only when `assignment.epoch` rises: the config acknowledges the
//! reshuffle, and analysis splits on the epoch. Lowering traffic, removing a
//! variant and stopping are allowed with a warning that says how many enrolled
//! units they drop or move. Raising traffic, adding a variant, reweighting and
//! reordering are safe.

use serde::Serialize;

use super::cause::Cause;
use super::diff::{ExperimentDiff, SnapshotDiff};
use super::summary::Summary;
use crate::config::{ConfigError, ConfigErrors};

/// Tolerance for fractions computed in floating point (well below one slot, 2^-32).
const EPS: f64 = 1e-12;

/// The guard's decision for one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Moves, drops and replaces nobody enrolled (or the experiment does not enrol).
    Safe,
    /// Allowed, but drops or moves enrolled units as the change requires.
    Warn,
    /// A reshuffle acknowledged by an epoch bump.
    Acknowledged,
    /// Reassigns enrolled units of a running experiment without acknowledgement.
    Refused,
}

/// The decision and its reasons, written for the person changing the config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// Decision.
    pub verdict: Verdict,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// Judges one experiment's change.
pub fn judge(d: &ExperimentDiff) -> Judgement {
    let mut reshuffle = Vec::new();
    let mut warn = Vec::new();
    let im = &d.impact;
    let enrolled = d.before.as_ref().map_or(0.0, |s| s.enrolled);
    // Nobody enrolled (e.g. a ramp that has not started) means nobody to reassign.
    if d.was_running() && d.is_running() && enrolled > EPS {
        // The causes are listed once, beside the reasons (diff's `cause:`
        // lines, the refusal's first clause): the reasons give the consequence.
        if d.causes.iter().any(|c| c.redraws()) {
            reshuffle.push(format!(
                "this redraws every unit: of the units enrolled now, {} would change variant and {} would leave",
                pct(d.moved_of_enrolled()),
                pct(d.left_of_enrolled())
            ));
        }
        if reshuffle.is_empty() && im.moved > im.required_moved + EPS {
            reshuffle.push(format!(
                "{} of enrolled units would change variant, more than the {} the new variant weights alone require",
                pct(d.moved_of_enrolled()),
                pct(d.of_enrolled(im.required_moved))
            ));
        }
    }
    if d.was_running() {
        if im.left > EPS {
            let why = if d.is_running() {
                "leave the experiment"
            } else {
                "leave as it stops enrolling"
            };
            warn.push(format!(
                "{} of enrolled units {why}",
                pct(d.left_of_enrolled())
            ));
        }
        if im.moved > EPS {
            warn.push(format!(
                "{} of enrolled units change variant",
                pct(d.moved_of_enrolled())
            ));
        }
        for c in &d.causes {
            match c {
                Cause::VariantRemoved { .. } | Cause::ExperimentRemoved => {
                    warn.push(format!("{c}"))
                }
                Cause::TargetingChanged => warn.push(format!(
                    "{c}: enrolled units whose attributes no longer match leave"
                )),
                Cause::ScheduleChanged {
                    lowers_from: Some(_),
                } => warn.push(format!("{c}: enrolled units leave then")),
                Cause::DefaultVariantChanged { .. } => warn.push(format!(
                    "{c}: units outside the experiment get a different variant \
                     (reordering variants changes the default unless defaultVariant is set)"
                )),
                _ => {}
            }
        }
    }
    if !reshuffle.is_empty() {
        if d.epoch_bumped() {
            reshuffle.push("acknowledged by the assignment.epoch bump".into());
            return Judgement {
                verdict: Verdict::Acknowledged,
                reasons: reshuffle,
            };
        }
        let epoch = d.before.as_ref().map_or(0, |s| s.epoch);
        reshuffle.push(format!(
            "to reshuffle on purpose, set assignment.epoch to {} (this restarts the analysis window)",
            epoch + 1
        ));
        return Judgement {
            verdict: Verdict::Refused,
            reasons: reshuffle,
        };
    }
    if warn.is_empty() {
        Judgement {
            verdict: Verdict::Safe,
            reasons: Vec::new(),
        }
    } else {
        Judgement {
            verdict: Verdict::Warn,
            reasons: warn,
        }
    }
}

/// The refusals of a whole diff as config errors (file, experiment, field), or
/// `None` when nothing is refused.
pub fn refusals(diff: &SnapshotDiff) -> Option<ConfigErrors> {
    let errors: Vec<ConfigError> = diff
        .experiments
        .iter()
        .filter_map(|d| {
            let j = judge(d);
            (j.verdict == Verdict::Refused).then(|| refusal(d, &j))
        })
        .collect();
    (!errors.is_empty()).then_some(ConfigErrors(errors))
}

fn refusal(d: &ExperimentDiff, j: &Judgement) -> ConfigError {
    let field = d
        .causes
        .iter()
        .find(|c| c.redraws())
        .or_else(|| d.causes.first())
        .map_or("assignment", Cause::field);
    let causes: Vec<String> = d.causes.iter().map(ToString::to_string).collect();
    ConfigError::field(
        &d.file,
        &d.key,
        field,
        format!(
            "cohort guard refused a change to this running experiment: {}; {}. (Of all eligible units: {} change variant, {} leave, {} join.)",
            causes.join(", "),
            j.reasons.join("; "),
            pct(d.impact.moved),
            pct(d.impact.left),
            pct(d.impact.joined),
        ),
    )
}

/// The reload-time check: compares the served snapshot with the next one (ramp
/// schedules at `now`), logs every refusal and warning with its diff, and returns
/// the refusals as errors when the reload must be rejected as a whole.
pub fn check_reload(
    served: &crate::Snapshot,
    next: &crate::Snapshot,
    now: i64,
) -> Result<Summary, ConfigErrors> {
    // Pairs whose changes move nobody are left out: they would be judged
    // safe with nothing to report (`snapshot::guard_key`).
    let d = super::diff::assigning_diff(served, next, now);
    let (mut warned, mut refused) = (Summary::default(), Summary::default());
    for e in &d.experiments {
        let j = judge(e);
        let detail = || {
            let causes: Vec<String> = e.causes.iter().map(ToString::to_string).collect();
            format!(
                "{} ({}); moved={} left={} joined={}",
                j.reasons.join("; "),
                causes.join(", "),
                e.impact.moved,
                e.impact.left,
                e.impact.joined
            )
        };
        match j.verdict {
            Verdict::Safe => {}
            Verdict::Warn | Verdict::Acknowledged => warned.push(&e.key, detail),
            Verdict::Refused => refused.push(&e.key, detail),
        }
    }
    // One line per kind, not one per experiment (see `crate::reload::summary`).
    if !warned.is_empty() {
        tracing::warn!(
            count = warned.total,
            experiments = %warned.first_keys(),
            first = %warned.first_items(),
            from_version = %d.old_version,
            to_version = %d.new_version,
            "cohort guard: allowed changes to running experiments (the full list is in /readyz)"
        );
    }
    if !refused.is_empty() {
        tracing::error!(
            count = refused.total,
            experiments = %refused.first_keys(),
            first = %refused.first_items(),
            from_version = %d.old_version,
            to_version = %d.new_version,
            "cohort guard: reload refused (the full list is in /readyz)"
        );
    }
    match refusals(&d) {
        Some(errors) => Err(errors),
        None => Ok(warned),
    }
}
