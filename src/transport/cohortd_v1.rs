//! The `cohortd.v1.Assignment` gRPC service: converts requests at the edge, loads
//! the serving snapshot lock-free once per call, and calls the pure engine.
//!
//! Errors are precise statuses: unknown or draft experiment NOT_FOUND, malformed
//! or oversized input INVALID_ARGUMENT, no config loaded yet UNAVAILABLE.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use prost_types::Struct;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::engine::context::UnitBuf;
use crate::engine::resolve::resolve;
use crate::engine::{Assignment, EvalError, EvalOptions, Sticky};
use crate::exposure::{expose, Source, Subject};
use crate::reload::ReloadEvent;
use crate::snapshot::Experiment;
use crate::state::AppState;
use crate::transport::convert::json_to_proto;
pub use crate::transport::convert::reason_to_proto;
use crate::transport::explain::ExplainSteps;
use crate::transport::pb;
use crate::transport::status::{eval_status, snapshot_or_unavailable};
use crate::transport::wire::context::WireContext;
use crate::transport::wire::reply::{AssignAllReply, AssignReply, EncodedCache, Item};
use crate::transport::wire::{request as wire_pb, server as wire_server};
use crate::Snapshot;

/// The `Assignment` service over the shared [`AppState`].
#[derive(Debug, Clone)]
pub struct AssignmentService {
    state: AppState,
    /// The encoded response fields of the served snapshot (see `wire::reply`).
    encoded: Arc<EncodedCache>,
}

impl AssignmentService {
    /// A service reading from `state`.
    pub fn new(state: AppState) -> Self {
        AssignmentService {
            state,
            encoded: Arc::default(),
        }
    }

    /// The tonic server (`cohortd.v1.Assignment`, see `wire::server`), with the
    /// configured decoding limit.
    pub fn into_server(self) -> wire_server::assignment_server::AssignmentServer<Self> {
        let max = self.state.limits.max_message_bytes;
        wire_server::assignment_server::AssignmentServer::new(self).max_decoding_message_size(max)
    }

    fn snapshot(&self) -> Result<Arc<Snapshot>, Status> {
        snapshot_or_unavailable(&self.state)
    }

    fn context<'a>(
        &self,
        ctx: &'a Option<Struct>,
        empty: &'a Struct,
    ) -> Result<&'a Struct, Status> {
        let ctx = ctx.as_ref().unwrap_or(empty);
        self.state.limits.check_context(ctx)?;
        Ok(ctx)
    }

    /// What `Assign` and `Explain` check before evaluating one experiment: the
    /// key, the sticky map and the context against the limits, then the serving
    /// snapshot (UNAVAILABLE before the first config) and the options.
    fn one_experiment<'r>(
        &self,
        r: &'r pb::AssignRequest,
        empty: &'r Struct,
    ) -> Result<(&'r Struct, Arc<Snapshot>, EvalOptions<'r>), Status> {
        self.state
            .limits
            .check_key("experiment key", &r.experiment)?;
        self.check_sticky(&r.sticky)?;
        let ctx = self.context(&r.context, empty)?;
        let snap = self.snapshot()?;
        let opts = EvalOptions {
            sticky: sticky_for(&r.sticky, &r.experiment),
            ..EvalOptions::default()
        };
        Ok((ctx, snap, opts))
    }

    /// The response item of `a` in the encoded table of `snap`.
    fn item(
        &self,
        enc: &crate::transport::wire::reply::Encoded,
        snap: &Snapshot,
        a: &Assignment<'_>,
    ) -> Result<Item, Status> {
        enc.item(snap, a).ok_or_else(|| {
            Status::internal(format!(
                "assignment of `{}` is not from the served config",
                a.experiment.key
            ))
        })
    }

    fn check_sticky(&self, sticky: &HashMap<String, pb::StickyAssignment>) -> Result<(), Status> {
        let l = &self.state.limits;
        if sticky.len() > l.max_assign_all_experiments {
            return Err(Status::invalid_argument(format!(
                "{} sticky assignments; the limit is {} (--max-assign-all-experiments)",
                sticky.len(),
                l.max_assign_all_experiments
            )));
        }
        for (k, v) in sticky {
            l.check_key("sticky experiment key", k)?;
            l.check_key("sticky variant key", &v.variant)?;
        }
        Ok(())
    }
}

/// A flag of another format asked for over cohortd.v1, which serves experiments.
fn not_an_experiment(key: &str) -> Status {
    Status::failed_precondition(format!(
        "`{key}` is not a cohortd experiment; evaluate it over flagd or OFREP"
    ))
}

fn sticky_for<'a>(
    sticky: &'a HashMap<String, pb::StickyAssignment>,
    key: &str,
) -> Option<Sticky<'a>> {
    sticky.get(key).map(|s| Sticky {
        variant: &s.variant,
    })
}

/// Builds the response message for one assignment.
pub fn assign_response(a: &Assignment<'_>, version: &str) -> pb::AssignResponse {
    let e = a.experiment;
    pb::AssignResponse {
        experiment: e.key.to_string(),
        variant: a.variant.key.to_string(),
        value: Some(json_to_proto(&a.variant.value)),
        enrolled: a.enrolled,
        reason: reason_to_proto(a.reason) as i32,
        config_version: version.to_owned(),
        epoch: e.epoch,
        salt_fingerprint: e.salt_fingerprint.to_string(),
        status: e.status.as_str().to_owned(),
        layer: e
            .layer
            .as_ref()
            .map(|l| l.key.to_string())
            .unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl wire_server::assignment_server::Assignment for AssignmentService {
    async fn assign(
        &self,
        request: Request<wire_pb::AssignRequest>,
    ) -> Result<Response<AssignReply>, Status> {
        let r = request.get_ref();
        let limits = &self.state.limits;
        let key = r.experiment.as_str();
        limits.check_key("experiment key", key)?;
        self.check_sticky(&r.sticky)?;
        let ctx = WireContext::decode(&r.context, limits)?;
        let snap = self.snapshot()?;
        let opts = EvalOptions {
            sticky: sticky_for(&r.sticky, key),
            ..EvalOptions::default()
        };
        let res = resolve(&snap, key, &ctx, opts).map_err(|e| eval_status(&snap, e))?;
        let Some(a) = res.assignment else {
            return Err(not_an_experiment(key));
        };
        if let Some(s) = Subject::of(&res).filter(|_| r.exposure) {
            expose(&*self.state.sink, s, &ctx, snap.version(), Source::Assign);
        }
        let enc = self.encoded.get(&snap);
        let item = self.item(&enc, &snap, &a)?;
        Ok(Response::new(AssignReply::new(enc, item)))
    }

    async fn assign_all(
        &self,
        request: Request<wire_pb::AssignAllRequest>,
    ) -> Result<Response<AssignAllReply>, Status> {
        let r = request.get_ref();
        let limits = &self.state.limits;
        limits.check_assign_all(&r.experiments)?;
        self.check_sticky(&r.sticky)?;
        let ctx = WireContext::decode(&r.context, limits)?;
        let snap = self.snapshot()?;
        let version = snap.version();
        let enc = self.encoded.get(&snap);
        let mut out = Vec::with_capacity(if r.experiments.is_empty() {
            snap.experiments().len()
        } else {
            r.experiments.len()
        });
        let mut one = |e: &Experiment| -> Result<(), Status> {
            let opts = EvalOptions {
                sticky: sticky_for(&r.sticky, &e.key),
                ..EvalOptions::default()
            };
            let a = e.evaluate(&ctx, opts, &mut ());
            if r.exposure {
                expose(
                    &*self.state.sink,
                    Subject::Experiment(a),
                    &ctx,
                    version,
                    Source::AssignAll,
                );
            }
            out.push(self.item(&enc, &snap, &a)?);
            Ok(())
        };
        if r.experiments.is_empty() {
            snap.served().try_for_each(&mut one)?;
        } else {
            // Look every key up before evaluating any, so an unknown key records
            // no exposures for the others.
            let found = r
                .experiments
                .iter()
                .map(|k| match snap.experiment(k) {
                    None => Err(eval_status(&snap, EvalError::NotFound(k.clone()))),
                    Some(e) if !e.is_served() => {
                        Err(eval_status(&snap, EvalError::Draft(k.clone())))
                    }
                    Some(e) => Ok(e),
                })
                .collect::<Result<Vec<_>, _>>()?;
            found.into_iter().try_for_each(&mut one)?;
        }
        Ok(Response::new(AssignAllReply::new(enc, out)))
    }

    async fn log_exposures(
        &self,
        request: Request<pb::LogExposuresRequest>,
    ) -> Result<Response<pb::LogExposuresResponse>, Status> {
        let r = request.get_ref();
        let limits = &self.state.limits;
        limits.check_exposure_records(r.exposures.len())?;
        // The connection's records-per-second budget (RESOURCE_EXHAUSTED beyond).
        crate::security::ingest::admit(request.extensions(), r.exposures.len())?;
        let snap = self.snapshot()?;
        let empty = Struct::default();
        // Validate every record before recording any: a bad batch is refused
        // whole, so the client can fix it and resend without duplicates.
        let mut checked = Vec::with_capacity(r.exposures.len());
        for (i, rec) in r.exposures.iter().enumerate() {
            let at = |s: Status| Status::new(s.code(), format!("exposures[{i}]: {}", s.message()));
            limits
                .check_key("experiment key", &rec.experiment)
                .map_err(|e| at(e.into()))?;
            limits
                .check_key("variant key", &rec.variant)
                .map_err(|e| at(e.into()))?;
            let ctx = self.context(&rec.context, &empty).map_err(at)?;
            let e = match snap.experiment(&rec.experiment) {
                None => {
                    return Err(at(eval_status(
                        &snap,
                        EvalError::NotFound(rec.experiment.clone()),
                    )))
                }
                Some(e) if !e.is_served() => {
                    return Err(at(eval_status(
                        &snap,
                        EvalError::Draft(rec.experiment.clone()),
                    )))
                }
                Some(e) => e,
            };
            if e.variant(&rec.variant).is_none() {
                return Err(at(Status::invalid_argument(format!(
                    "experiment `{}` has no variant `{}`",
                    e.key, rec.variant
                ))));
            }
            let mut buf = UnitBuf::default();
            if buf
                .unit_bytes(crate::Context::get(ctx, &e.hash_key))
                .is_none()
            {
                return Err(at(Status::invalid_argument(format!(
                    "context has no usable unit attribute `{}` (a non-empty string or a finite number)",
                    e.hash_key
                ))));
            }
            checked.push((e, ctx, rec));
        }
        // Only enrolled units are exposures: re-evaluate under the served config and
        // record the records it reproduces; the rest are not exposures (the unit is
        // not enrolled, or the config changed since the client's assignment).
        let mut accepted = 0u32;
        for (e, ctx, rec) in checked {
            let a = e.evaluate(ctx, EvalOptions::default(), &mut ());
            if a.enrolled && *a.variant.key == *rec.variant {
                expose(
                    &*self.state.sink,
                    Subject::Experiment(a),
                    ctx,
                    snap.version(),
                    Source::LogExposures,
                );
                accepted += 1;
            } else {
                tracing::debug!(
                    experiment = %e.key,
                    reported = %rec.variant,
                    served = %a.variant.key,
                    enrolled = a.enrolled,
                    "exposure not recorded: not an enrolled assignment under the served config"
                );
            }
        }
        Ok(Response::new(pb::LogExposuresResponse { accepted }))
    }

    async fn track(
        &self,
        request: Request<pb::TrackRequest>,
    ) -> Result<Response<pb::TrackResponse>, Status> {
        super::track::track(&self.state, request).await
    }

    async fn explain(
        &self,
        request: Request<pb::AssignRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        let r = request.get_ref();
        let empty = Struct::default();
        let (ctx, snap, opts) = self.one_experiment(r, &empty)?;
        // A flagd-format key gets Assign's answer, not NOT_FOUND: it exists,
        // but cohortd.v1 serves experiments only.
        if snap.flagd().get(&r.experiment).is_some() {
            return Err(not_an_experiment(&r.experiment));
        }
        let mut steps = ExplainSteps::default();
        let a = snap
            .assign_traced(&r.experiment, ctx, opts, &mut steps)
            .map_err(|e| eval_status(&snap, e))?;
        let steps = steps.finish(&a);
        Ok(Response::new(pb::ExplainResponse {
            assignment: Some(assign_response(&a, snap.version())),
            steps,
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Subscribe before reading the version, so no reload falls in between.
        let mut events = self.state.store.subscribe();
        let snap = self.snapshot()?;
        let store = self.state.store.clone();
        let mut shutdown = self.state.shutdown.clone();
        let (tx, rx) = mpsc::channel(16);
        let initial = |version: &str| pb::WatchEvent {
            config_version: version.to_owned(),
            initial: true,
            ..Default::default()
        };
        let mut last = snap.version().to_owned();
        let first = initial(&last);
        drop(snap);
        tokio::spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let ev = tokio::select! {
                    _ = tx.closed() => return,
                    _ = shutdown.wait() => return,
                    ev = events.recv() => ev,
                };
                let msg = match ev {
                    Ok(ReloadEvent {
                        version,
                        added,
                        changed,
                        removed,
                    }) => pb::WatchEvent {
                        config_version: version,
                        added,
                        changed,
                        removed,
                        initial: false,
                    },
                    // Fell behind: resend the version in force as a fresh start.
                    Err(broadcast::error::RecvError::Lagged(_)) => match store.load() {
                        Some(s) => initial(s.version()),
                        None => continue,
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if msg.initial && msg.config_version == last {
                    continue;
                }
                last.clone_from(&msg.config_version);
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
