//! One compiled experiment, ready to serve: its variants, the layer and holdout
//! draws it respects, and its ramp schedule. Evaluation is in [`crate::engine`].
//!
//! Every part held on the heap is behind an `Arc` (`Arc<str>`, `Arc<[T]>`), so
//! a reload that keeps an experiment unchanged copies it with a few reference
//! count increments (see `super::reuse`) instead of a deep clone. Reading an
//! `Arc<[T]>` or `Arc<str>` is one pointer away, as a `Vec` or `Box<str>` was:
//! the request path pays nothing for the sharing.

use std::path::Path;
use std::sync::Arc;

use crate::config::{ExperimentConfig, Status};
use crate::engine::bucket::DrawKey;
use crate::engine::reads::Reads;

use super::schedule::{threshold_at, unix_now, RampPoint};
use super::targeting::CompiledTargeting;

/// One variant, ready to serve.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Variant key.
    pub key: Arc<str>,
    /// The value served.
    pub value: serde_json::Value,
    /// Relative weight (0 means "never chosen by hashing").
    pub weight: f64,
    /// `1 / weight`, for the cheap score bound (never for the score itself).
    pub(crate) inv_weight: f64,
    pub(crate) draw: DrawKey,
}

/// A unit draw against a fixed fraction (holdout) or a slot range (layer).
#[derive(Debug, Clone)]
pub struct SlotRange {
    /// Layer or holdout key.
    pub key: Arc<str>,
    /// Attribute that identifies the unit for this draw.
    pub hash_key: Arc<str>,
    /// First slot inside.
    pub start: u64,
    /// First slot past the end.
    pub end: u64,
    pub(crate) draw: DrawKey,
    /// Whether `hash_key` is the experiment's own unit attribute, so the draw
    /// reuses the unit already read (decided once here, not per call).
    pub(crate) same_unit: bool,
}

/// One compiled experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Experiment key.
    pub key: Arc<str>,
    /// Lifecycle state.
    pub status: Status,
    /// Variants in config order.
    pub variants: Arc<[Variant]>,
    /// Index of the variant served to units outside the experiment.
    pub default_variant: usize,
    /// Index of the declared winner, if any.
    pub winner: Option<usize>,
    /// Enrolment threshold in slots (`floor(trafficAllocation * 2^32)`); before
    /// the first step of `schedule`, or always when there is none.
    pub traffic: u64,
    /// Ramp steps, sorted by time (see [`super::schedule`]).
    pub schedule: Arc<[RampPoint]>,
    /// Attribute that identifies the unit.
    pub hash_key: Arc<str>,
    /// Exportable fingerprint of the salt (never the salt).
    pub salt_fingerprint: Arc<str>,
    /// Acknowledged-reshuffle counter.
    pub epoch: u32,
    /// Layer membership.
    pub layer: Option<SlotRange>,
    /// Holdout this experiment respects (slots `[0, end)` are held out).
    pub holdout: Option<SlotRange>,
    /// Content fingerprint of everything that affects this experiment's assignments.
    pub fingerprint: Arc<str>,
    /// The hash `fingerprint` spells in hex, inline: comparing two snapshots
    /// reads it without following a pointer (see `super::guard_key`).
    pub(crate) fingerprint_hash: u64,
    /// Equal for two experiments of one key whose differences move no unit
    /// (name, description, metrics, ...): the cohort guard skips such pairs
    /// (see `super::guard_key`).
    pub(crate) guard_key: u64,
    /// The file it was loaded from.
    pub source: Arc<Path>,
    /// The experiment as written (for metadata, diff and explain).
    pub config: Arc<ExperimentConfig>,
    /// `config` serialised as compact JSON, exactly as inside the serialised
    /// document: the snapshot's version hashes these bytes, so a reload that
    /// keeps this experiment does not serialise it again.
    pub(crate) canonical: Arc<[u8]>,
    pub(crate) traffic_draw: DrawKey,
    /// Whether every variant has the same positive weight: the variant is then
    /// chosen by comparing draws, without scores (`engine::choose_equal`).
    pub(crate) equal_weights: bool,
    /// Position of `hash_key` in the snapshot's `unit_keys` (`usize::MAX`: none).
    pub(crate) unit_key: usize,
    pub(crate) targeting: CompiledTargeting,
    /// The attributes evaluation reads (`hash_key` first, then the targeting
    /// conditions'), found in one walk of the context.
    pub(crate) reads: Reads,
    pub(crate) salt: Arc<str>,
}

impl Experiment {
    /// The salt in force (internal: never export it; use `salt_fingerprint`).
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The variant with key `key`.
    pub fn variant(&self, key: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| &*v.key == key)
    }

    /// Whether this experiment is served (drafts are not).
    pub fn is_served(&self) -> bool {
        self.status != Status::Draft
    }

    /// Whether `metrics` declares `name` (primary, secondary or guardrail): the
    /// outcomes `Track` attributes to this experiment.
    pub fn lists_metric(&self, name: &str) -> bool {
        let Some(m) = &self.config.metrics else {
            return false;
        };
        m.primary.iter().chain(&m.secondary).any(|x| x.name == name)
            || m.guardrails.iter().any(|g| g.name == name)
    }
}

impl Experiment {
    /// The enrolment threshold in force at `now_unix_secs` (the clock when `None`).
    /// Without a schedule this is [`Experiment::traffic`] and reads no clock.
    #[inline]
    pub fn traffic_at(&self, now_unix_secs: Option<i64>) -> u64 {
        if self.schedule.is_empty() {
            return self.traffic;
        }
        threshold_at(
            self.traffic,
            &self.schedule,
            now_unix_secs.unwrap_or_else(unix_now),
        )
    }

    /// The traffic allocation in force at `now` as written in the config (for
    /// reports; evaluation uses the exact slot threshold).
    pub fn traffic_allocation_at(&self, now: i64) -> f64 {
        match self.schedule.partition_point(|p| p.at <= now) {
            0 => self.config.traffic_allocation.unwrap_or(1.0),
            n => self
                .config
                .traffic_schedule
                .get(n - 1)
                .map_or(1.0, |s| s.traffic_allocation),
        }
    }

    /// The time of the next schedule step after `now`, if any (for reports).
    pub fn next_step_after(&self, now: i64) -> Option<RampPoint> {
        self.schedule.iter().copied().find(|p| p.at > now)
    }
}
