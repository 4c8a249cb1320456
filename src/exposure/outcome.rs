//! Outcome events (`cohortd.v1.Assignment/Track`): what a transport hands the
//! sink, and the OTLP log record each one becomes.
//!
//! Outcomes travel beside exposures on purpose: the same dedup window, queue,
//! drop counting, exporter and unit-id privacy setting, so an operator has one
//! pipeline to size and watch. They differ in two ways. They are deduped by the
//! caller's idempotency key (`event_id`) rather than by (unit, variant, version):
//! a retry is the same event, two purchases are not. And they are exported as log
//! records only (event name `cohortd.outcome`), in the shape `cohortd analyze`
//! reads (docs/exposures.md "Outcome records"); the request's trace context is
//! kept on the record, so an outcome still joins the caller's trace.

use std::time::SystemTime;

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::SpanContext;
use opentelemetry::Key;

use super::privacy::UnitIdMode;
use crate::snapshot::Experiment;

/// The event name of an outcome log record.
pub const OUTCOME_EVENT: &str = "cohortd.outcome";

/// One experiment an outcome is attributed to: the unit is enrolled there in
/// `variant` under the served config.
#[derive(Debug, Clone, Copy)]
pub struct Attribution<'a> {
    /// The experiment (its key, epoch and salt fingerprint are exported).
    pub experiment: &'a Experiment,
    /// The unit's variant key.
    pub variant: &'a str,
}

/// The part of an outcome that belongs to one unit id. Experiments hashing
/// different attributes (`userId`, `deviceId`) see different units, so one event
/// becomes one record per distinct unit id; almost always there is one.
#[derive(Debug, Clone)]
pub struct OutcomePart<'a> {
    /// The unit id as the attributed experiments hash it.
    pub unit: &'a str,
    /// The exported event id: the caller's for the first part, and
    /// `{event_id}/{unit attribute}` for further parts, so each record keeps a
    /// distinct, deterministic id (downstream dedup stays correct on retries).
    pub event_id: &'a str,
    /// The experiments attributed through this unit id.
    pub assignments: &'a [Attribution<'a>],
}

/// One outcome event, validated and attributed.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The caller's idempotency key (the dedup key).
    pub event_id: &'a str,
    /// A metric declared by the attributed experiments.
    pub metric: &'a str,
    /// Finite value (1 for a plain conversion).
    pub value: f64,
    /// When the event happened.
    pub time: SystemTime,
    /// The config version the assignments come from.
    pub config_version: &'a str,
    /// One per distinct unit id. Empty when the unit is enrolled in none of the
    /// experiments: the sink only counts it (`outcomes_unattributed_total`).
    pub parts: &'a [OutcomePart<'a>],
}

/// What the sink did with an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeVerdict {
    /// First time this event id was seen in the window: recorded (queued, or
    /// dropped and counted when the queue is full).
    Recorded,
    /// The event id was already recorded in this window: a retry, skipped.
    Duplicate,
    /// Attributed to no experiment: counted, nothing exported.
    Unattributed,
}

/// An outcome record waiting in the export queue (owned: it outlives the request).
pub(crate) struct PendingOutcome {
    pub(crate) unit: String,
    pub(crate) event_id: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) time: SystemTime,
    pub(crate) config_version: String,
    pub(crate) assignments: Vec<PendingAssignment>,
    pub(crate) parent: Option<SpanContext>,
}

/// One `cohortd.assignments` entry of a queued outcome.
pub(crate) struct PendingAssignment {
    pub(crate) experiment: Box<str>,
    pub(crate) variant: Box<str>,
    pub(crate) epoch: u32,
    pub(crate) salt_fingerprint: Box<str>,
}

impl PendingOutcome {
    /// The owned copy of one part of `o`.
    pub(crate) fn of(o: &Outcome<'_>, part: &OutcomePart<'_>, parent: Option<SpanContext>) -> Self {
        PendingOutcome {
            unit: part.unit.to_owned(),
            event_id: part.event_id.to_owned(),
            metric: o.metric.to_owned(),
            value: o.value,
            time: o.time,
            config_version: o.config_version.to_owned(),
            assignments: part
                .assignments
                .iter()
                .map(|a| PendingAssignment {
                    experiment: (*a.experiment.key).into(),
                    variant: a.variant.into(),
                    epoch: a.experiment.epoch,
                    salt_fingerprint: (*a.experiment.salt_fingerprint).into(),
                })
                .collect(),
            parent,
        }
    }
}

/// An outcome ready to export as a log record.
#[derive(Debug, Clone)]
pub struct OutcomeRecord {
    /// Attributes in a stable order (see the table in docs/exposures.md).
    pub attributes: Vec<(Key, AnyValue)>,
    /// The event's time (`timeUnixNano`).
    pub time: SystemTime,
    /// The request's span, for the record's trace context.
    pub parent: Option<SpanContext>,
}

fn text(s: &str) -> AnyValue {
    AnyValue::String(s.to_owned().into())
}

/// The exported attributes of one queued outcome.
pub(crate) fn record(p: &PendingOutcome, mode: UnitIdMode) -> OutcomeRecord {
    let mut attributes = Vec::with_capacity(8);
    attributes.push((
        Key::from_static_str("cohortd.outcome.metric"),
        text(&p.metric),
    ));
    attributes.push((
        Key::from_static_str("cohortd.outcome.value"),
        AnyValue::Double(p.value),
    ));
    attributes.push((
        Key::from_static_str("cohortd.outcome.event_id"),
        text(&p.event_id),
    ));
    if let Some(unit) = mode.export(&p.unit) {
        attributes.push((Key::from_static_str("feature_flag.context.id"), text(&unit)));
    }
    attributes.push((
        Key::from_static_str("feature_flag.provider.name"),
        text("cohortd"),
    ));
    attributes.push((Key::from_static_str("cohortd.source"), text("track")));
    let list = p
        .assignments
        .iter()
        .map(|a| {
            let map = [
                ("experiment", text(&a.experiment)),
                ("variant", text(&a.variant)),
                ("version", text(&p.config_version)),
                ("epoch", AnyValue::Int(i64::from(a.epoch))),
                ("salt_fingerprint", text(&a.salt_fingerprint)),
            ]
            .into_iter()
            .map(|(k, v)| (Key::from_static_str(k), v))
            .collect();
            AnyValue::Map(Box::new(map))
        })
        .collect();
    attributes.push((
        Key::from_static_str("cohortd.assignments"),
        AnyValue::ListAny(Box::new(list)),
    ));
    OutcomeRecord {
        attributes,
        time: p.time,
        parent: p.parent.clone(),
    }
}
