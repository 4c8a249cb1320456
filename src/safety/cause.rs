//! The causes a config change can have on an experiment's cohort, what each
//! one means (does it redraw enrolled units?), the config field it points at,
//! and its one-line rendering for `cohortd diff` and the reload guard's log.
//! [`super::diff`] finds them; this file only names and explains them.

use serde::Serialize;

use crate::config::{Status, Strategy};

/// Why an experiment's assignments may differ between two configs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// The experiment is new.
    ExperimentAdded,
    /// The experiment is gone.
    ExperimentRemoved,
    /// Lifecycle status changed (only `running` enrols).
    StatusChanged {
        /// Before.
        from: Status,
        /// After.
        to: Status,
    },
    /// `assignment.salt` changed: every draw is redone.
    SaltChanged {
        /// Fingerprint before (never the salt).
        from: String,
        /// Fingerprint after.
        to: String,
    },
    /// `assignment.hashKey` changed: units are identified differently.
    HashKeyChanged {
        /// Attribute before.
        from: String,
        /// Attribute after.
        to: String,
    },
    /// `assignment.strategy` changed: a different algorithm.
    StrategyChanged {
        /// Before.
        from: Strategy,
        /// After.
        to: Strategy,
    },
    /// A variant was added.
    VariantAdded {
        /// Variant key.
        key: String,
    },
    /// A variant was removed; its units go to the others.
    VariantRemoved {
        /// Variant key.
        key: String,
    },
    /// A variant's weight changed.
    VariantReweighted {
        /// Variant key.
        key: String,
        /// Weight before.
        from: f64,
        /// Weight after.
        to: f64,
    },
    /// Variants were reordered (moves nobody: draws depend on keys, not positions).
    VariantsReordered,
    /// A variant serves a different value (moves nobody).
    VariantValueChanged {
        /// Variant key.
        key: String,
    },
    /// Units outside the experiment get a different default variant.
    DefaultVariantChanged {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// The declared winner changed.
    WinnerChanged {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// Traffic in force rose: units join, nobody moves.
    TrafficRaised {
        /// Allocation before.
        from: f64,
        /// Allocation after.
        to: f64,
    },
    /// Traffic in force fell: enrolled units leave, nobody moves between variants.
    TrafficLowered {
        /// Allocation before.
        from: f64,
        /// Allocation after.
        to: f64,
    },
    /// The ramp schedule changed.
    ScheduleChanged {
        /// The first time from the comparison time on at which the new schedule
        /// enrols less than the old one (RFC 3339), if any: from then on enrolled
        /// units leave.
        lowers_from: Option<String>,
    },
    /// Targeting (or a segment it uses) changed: who is eligible depends on real
    /// attributes; not estimated.
    TargetingChanged,
    /// Layer membership changed.
    LayerChanged {
        /// Whether the layer draw itself changed (key, salt or attribute), or the
        /// range moved so that it both loses and gains slots: either replaces part
        /// of the experiment's population.
        redraw: bool,
        /// What changed, in words.
        detail: String,
    },
    /// The holdout changed.
    HoldoutChanged {
        /// Whether the holdout draw itself changed (key, salt or attribute).
        redraw: bool,
        /// What changed, in words.
        detail: String,
    },
    /// `assignment.epoch` changed: an acknowledged reshuffle when it rises.
    EpochChanged {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
}

impl Cause {
    /// Whether this cause redraws enrolled units (reassigning them at random), as
    /// opposed to a change whose movement is the least the change itself requires.
    pub fn redraws(&self) -> bool {
        match self {
            Cause::SaltChanged { .. }
            | Cause::HashKeyChanged { .. }
            | Cause::StrategyChanged { .. } => true,
            Cause::LayerChanged { redraw, .. } | Cause::HoldoutChanged { redraw, .. } => *redraw,
            _ => false,
        }
    }

    /// The config field to point at when reporting this cause.
    pub fn field(&self) -> &'static str {
        match self {
            Cause::ExperimentAdded | Cause::ExperimentRemoved => "experimentId",
            Cause::StatusChanged { .. } => "status",
            Cause::SaltChanged { .. } => "assignment.salt",
            Cause::HashKeyChanged { .. } => "assignment.hashKey",
            Cause::StrategyChanged { .. } => "assignment.strategy",
            Cause::VariantAdded { .. }
            | Cause::VariantRemoved { .. }
            | Cause::VariantReweighted { .. }
            | Cause::VariantsReordered
            | Cause::VariantValueChanged { .. } => "variants",
            Cause::DefaultVariantChanged { .. } => "defaultVariant",
            Cause::WinnerChanged { .. } => "winner",
            Cause::TrafficRaised { .. } | Cause::TrafficLowered { .. } => "trafficAllocation",
            Cause::ScheduleChanged { .. } => "trafficSchedule",
            Cause::TargetingChanged => "targeting",
            Cause::LayerChanged { .. } => "layer",
            Cause::HoldoutChanged { .. } => "holdout",
            Cause::EpochChanged { .. } => "assignment.epoch",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::ExperimentAdded => write!(f, "experiment added"),
            Cause::ExperimentRemoved => write!(f, "experiment removed"),
            Cause::StatusChanged { from, to } => {
                write!(f, "status {} -> {}", from.as_str(), to.as_str())
            }
            Cause::SaltChanged { from, to } => {
                write!(f, "salt changed (fingerprint {from} -> {to})")
            }
            Cause::HashKeyChanged { from, to } => write!(f, "hashKey {from} -> {to}"),
            Cause::StrategyChanged { from, to } => write!(f, "strategy {from:?} -> {to:?}"),
            Cause::VariantAdded { key } => write!(f, "variant `{key}` added"),
            Cause::VariantRemoved { key } => write!(f, "variant `{key}` removed"),
            Cause::VariantReweighted { key, from, to } => {
                write!(f, "variant `{key}` weight {from} -> {to}")
            }
            Cause::VariantsReordered => write!(f, "variants reordered (moves nobody)"),
            Cause::VariantValueChanged { key } => write!(f, "variant `{key}` value changed"),
            Cause::DefaultVariantChanged { from, to } => {
                write!(f, "default variant {from} -> {to}")
            }
            Cause::WinnerChanged { from, to } => write!(
                f,
                "winner {} -> {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ),
            Cause::TrafficRaised { from, to } => write!(f, "traffic raised {from} -> {to}"),
            Cause::TrafficLowered { from, to } => write!(f, "traffic lowered {from} -> {to}"),
            Cause::ScheduleChanged { lowers_from: None } => {
                write!(f, "traffic schedule changed")
            }
            Cause::ScheduleChanged {
                lowers_from: Some(t),
            } => write!(
                f,
                "traffic schedule changed (enrols less than before from {t})"
            ),
            Cause::TargetingChanged => {
                write!(f, "targeting changed (effect depends on real attributes)")
            }
            Cause::LayerChanged { detail, .. } => write!(f, "layer: {detail}"),
            Cause::HoldoutChanged { detail, .. } => write!(f, "holdout: {detail}"),
            Cause::EpochChanged { from, to } => write!(f, "epoch {from} -> {to}"),
        }
    }
}
