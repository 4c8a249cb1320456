//! `cohortd.v1.Assignment/Track`: outcome events in, attributed by the sidecar.
//!
//! The engine is deterministic, so the caller sends only the unit's context and
//! the sidecar works out which variant the unit is in: for each event, every
//! served experiment that lists the metric in its `metrics` (or the experiments
//! the caller names) is evaluated, and the outcome is attributed to those where
//! the unit is enrolled. The outcome then goes to the exposure sink
//! ([`crate::exposure::outcome`]), which dedups it by event id and exports it.
//!
//! A batch is validated whole before anything is recorded: one bad event (an
//! unknown metric, a value that is not finite, a missing unit attribute, too
//! many events) refuses the batch with a status naming the event, and nothing of
//! it is recorded, so the client can fix it and resend without duplicates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Struct;
use tonic::{Request, Response, Status};

use crate::engine::context::UnitBuf;
use crate::engine::{EvalError, EvalOptions};
use crate::exposure::outcome::{Attribution, Outcome, OutcomePart, OutcomeVerdict};
use crate::snapshot::Experiment;
use crate::state::AppState;
use crate::transport::pb;
use crate::transport::status::{eval_status, snapshot_or_unavailable};

/// Latest accepted timestamp: 9999-12-31T23:59:59Z, as RFC 3339 allows.
const MAX_TIMESTAMP_SECS: i64 = 253_402_300_799;

/// One event that passed validation.
struct Checked<'r, 's> {
    event: &'r pb::OutcomeEvent,
    ctx: &'r Struct,
    value: f64,
    time: SystemTime,
    /// The experiments to evaluate (served, listing the metric).
    candidates: Vec<&'s Experiment>,
}

/// The unit id `ctx` gives experiment `e`, if usable.
fn unit_of(ctx: &Struct, e: &Experiment) -> Option<String> {
    let mut buf = UnitBuf::default();
    let bytes = buf.unit_bytes(crate::Context::get(ctx, &e.hash_key))?;
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

fn time_of(ts: Option<&prost_types::Timestamp>, now: SystemTime) -> Result<SystemTime, Status> {
    let Some(ts) = ts else { return Ok(now) };
    let valid =
        (0..=MAX_TIMESTAMP_SECS).contains(&ts.seconds) && (0..1_000_000_000).contains(&ts.nanos);
    if !valid {
        return Err(Status::invalid_argument(format!(
            "timestamp {}s {}ns is not a valid time between 1970 and 9999",
            ts.seconds, ts.nanos
        )));
    }
    Ok(UNIX_EPOCH + Duration::new(ts.seconds as u64, ts.nanos as u32))
}

/// Validates one event against the limits and the served config.
fn check<'r, 's>(
    state: &AppState,
    snap: &'s crate::Snapshot,
    event: &'r pb::OutcomeEvent,
    empty: &'r Struct,
    now: SystemTime,
) -> Result<Checked<'r, 's>, Status> {
    let limits = &state.limits;
    if event.metric.is_empty() {
        return Err(Status::invalid_argument("metric is empty"));
    }
    limits.check_key("metric name", &event.metric)?;
    if event.event_id.is_empty() {
        return Err(Status::invalid_argument(
            "event_id is empty; every event needs an idempotency key so a retry is recorded once",
        ));
    }
    limits.check_key("event_id", &event.event_id)?;
    let value = event.value.unwrap_or(1.0);
    if !value.is_finite() {
        return Err(Status::invalid_argument(format!(
            "value {value} is not a finite number"
        )));
    }
    let time = time_of(event.timestamp.as_ref(), now)?;
    let ctx = event.context.as_ref().unwrap_or(empty);
    limits.check_context(ctx)?;
    limits.check_assign_all(&event.experiments)?;
    let metric = event.metric.as_str();
    let candidates: Vec<&Experiment> = if event.experiments.is_empty() {
        let found: Vec<_> = snap.served().filter(|e| e.lists_metric(metric)).collect();
        if found.is_empty() {
            return Err(Status::invalid_argument(format!(
                "unknown metric `{metric}`: no served experiment declares it in `metrics` \
                 (primary, secondary or guardrails)"
            )));
        }
        found
    } else {
        let mut named = Vec::with_capacity(event.experiments.len());
        for k in &event.experiments {
            let e = match snap.experiment(k) {
                None => return Err(eval_status(snap, EvalError::NotFound(k.clone()))),
                Some(e) if !e.is_served() => {
                    return Err(eval_status(snap, EvalError::Draft(k.clone())))
                }
                Some(e) => e,
            };
            if !e.lists_metric(metric) {
                return Err(Status::invalid_argument(format!(
                    "unknown metric `{metric}` for experiment `{k}`: it is not in its `metrics` \
                     (primary, secondary or guardrails)"
                )));
            }
            named.push(e);
        }
        named
    };
    if !candidates.iter().any(|e| unit_of(ctx, e).is_some()) {
        let mut attrs: Vec<&str> = candidates.iter().map(|e| &*e.hash_key).collect();
        attrs.sort_unstable();
        attrs.dedup();
        return Err(Status::invalid_argument(format!(
            "context has no usable unit attribute ({}): a non-empty string or a finite number",
            attrs
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok(Checked {
        event,
        ctx,
        value,
        time,
        candidates,
    })
}

/// Serves one `Track` call (the tonic method delegates here).
pub async fn track(
    state: &AppState,
    request: Request<pb::TrackRequest>,
) -> Result<Response<pb::TrackResponse>, Status> {
    let r = request.get_ref();
    state.limits.check_track_events(r.events.len())?;
    // The connection's records-per-second budget (RESOURCE_EXHAUSTED beyond).
    crate::security::ingest::admit(request.extensions(), r.events.len())?;
    let snap = snapshot_or_unavailable(state)?;
    let version = snap.version();
    let empty = Struct::default();
    let now = SystemTime::now();
    // Validate every event before recording any: a bad batch is refused whole.
    let checked = r
        .events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            check(state, &snap, ev, &empty, now)
                .map_err(|s| Status::new(s.code(), format!("events[{i}]: {}", s.message())))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut results = Vec::with_capacity(checked.len());
    for c in checked {
        // (unit id, unit attribute, attribution), in candidate order.
        let mut enrolled: Vec<(String, &str, Attribution<'_>)> = Vec::new();
        for e in &c.candidates {
            let a = e.evaluate(c.ctx, EvalOptions::default(), &mut ());
            if !a.enrolled {
                continue;
            }
            if let Some(unit) = unit_of(c.ctx, e) {
                let at = Attribution {
                    experiment: e,
                    variant: &a.variant.key,
                };
                enrolled.push((unit, &e.hash_key, at));
            }
        }
        // One part per distinct unit id, in order of first appearance.
        let mut groups: Vec<(&str, String, Vec<Attribution<'_>>)> = Vec::new();
        for (unit, attr, at) in &enrolled {
            match groups.iter_mut().find(|g| g.0 == unit.as_str()) {
                Some(g) => g.2.push(*at),
                None => {
                    let id = if groups.is_empty() {
                        c.event.event_id.clone()
                    } else {
                        format!("{}/{attr}", c.event.event_id)
                    };
                    groups.push((unit, id, vec![*at]));
                }
            }
        }
        let parts: Vec<OutcomePart<'_>> = groups
            .iter()
            .map(|(unit, id, ats)| OutcomePart {
                unit,
                event_id: id,
                assignments: ats,
            })
            .collect();
        let verdict = state.sink.record_outcome(&Outcome {
            event_id: &c.event.event_id,
            metric: &c.event.metric,
            value: c.value,
            time: c.time,
            config_version: version,
            parts: &parts,
        });
        results.push(pb::TrackResult {
            event_id: c.event.event_id.clone(),
            assignments: enrolled
                .iter()
                .map(|(_, _, at)| pb::TrackAssignment {
                    experiment: at.experiment.key.to_string(),
                    variant: at.variant.to_owned(),
                    config_version: version.to_owned(),
                    epoch: at.experiment.epoch,
                    salt_fingerprint: at.experiment.salt_fingerprint.to_string(),
                })
                .collect(),
            duplicate: verdict == OutcomeVerdict::Duplicate,
        });
    }
    Ok(Response::new(pb::TrackResponse {
        results,
        config_version: version.to_owned(),
    }))
}
