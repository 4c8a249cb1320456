//! The exposure pipeline: the [`ExposureSink`] the transports call, and the
//! background task that exports.
//!
//! `record` does only bounded, non-blocking work on the request path: a dedup
//! lookup, counter bumps, the SRM tally and a `try_send` into a bounded queue
//! (when the queue is full the exposure is dropped and counted in
//! `exposures_dropped_total`). A background task ([`super::export_task`])
//! turns queued exposures into OTLP log records, built straight into a reused
//! export request and sent over gRPC (and spans, when they are on, through the
//! SDK tracer). A dead, slow or refusing collector therefore never
//! changes assignment latency or errors; it only fills queues, which drop.
//! With export off (no OTLP endpoint) there is no queue and no task; dedup,
//! counts and the SRM check still run, since they serve `/metrics`.
//! Outcome events (`Track`) take the same path with their own dedup set and
//! counters, and become log records only (see [`super::outcome`]).
//!
//! The queued item and the totals live in [`super::queue`], the draining
//! side in [`super::export_task`]; every queued item is emitted or counted as
//! dropped, and `shutdown` checks that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::dedup::{self, Dedup, Verdict};
use super::export_task;
use super::id::window_index;
use super::otel::{ExportFailures, OtelExport};
use super::outcome::{Outcome, OutcomeVerdict, PendingOutcome};
use super::privacy::UnitIdMode;
pub use super::queue::Stats;
use super::queue::{Item, Pending};
use super::srm::{Srm, SrmSettings};
use super::stratum;
use super::{counts::Counts, Exposure, ExposureSink, Subject};
use crate::engine::{Context, Reason};
use crate::reload::Store;

/// Settings of the pipeline (the `--exposure-*` and `--srm-*` serve flags).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Dedup window; zero turns dedup off. Rounded up to whole seconds.
    pub dedup_window: Duration,
    /// Keys remembered per dedup generation (memory bound: about 2 x 16 bytes each).
    pub dedup_capacity: usize,
    /// Exposures queued for export before new ones are dropped.
    pub queue: usize,
    /// What to export as `feature_flag.context.id`.
    pub unit_id: UnitIdMode,
    /// SRM thresholds.
    pub srm: SrmSettings,
    /// How often the SRM check runs.
    pub srm_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            dedup_window: Duration::from_secs(3600),
            dedup_capacity: 1_000_000,
            queue: 8192,
            unit_id: UnitIdMode::Raw,
            srm: SrmSettings::default(),
            srm_interval: Duration::from_secs(10),
        }
    }
}

/// A copy of [`Stats`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`Stats::received`].
    pub received: u64,
    /// See [`Stats::deduped`].
    pub deduped: u64,
    /// See [`Stats::queued`].
    pub queued: u64,
    /// See [`Stats::dropped`].
    pub dropped: u64,
    /// See [`Stats::emitted`].
    pub emitted: u64,
    /// See [`Stats::outcomes_received`].
    pub outcomes_received: u64,
    /// See [`Stats::outcomes_unattributed`].
    pub outcomes_unattributed: u64,
    /// See [`Stats::outcomes_deduped`].
    pub outcomes_deduped: u64,
    /// See [`Stats::outcomes_queued`].
    pub outcomes_queued: u64,
    /// See [`Stats::outcomes_dropped`].
    pub outcomes_dropped: u64,
    /// See [`Stats::outcomes_emitted`].
    pub outcomes_emitted: u64,
    /// Spans the exporter failed to deliver.
    pub failed_spans: u64,
    /// Log records the exporter failed to deliver.
    pub failed_logs: u64,
    /// Spans (server and exposure) the collector accepted.
    pub exported_spans: u64,
    /// Log records the collector accepted.
    pub exported_logs: u64,
}

/// State shared by the sink and the pipeline handle.
pub(crate) struct Shared {
    cfg: PipelineConfig,
    window_secs: u64,
    dedup: Option<Dedup>,
    outcome_dedup: Option<Dedup>,
    pub(crate) counts: Counts,
    pub(crate) srm: Srm,
    pub(crate) stats: Arc<Stats>,
    pub(crate) failures: Option<Arc<ExportFailures>>,
    tx: Option<mpsc::Sender<Item>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExposureRecorder")
            .field("cfg", &self.cfg)
            .field("export", &self.tx.is_some())
            .finish()
    }
}

impl Shared {
    fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        let load = |f: &Option<Arc<ExportFailures>>, pick: fn(&ExportFailures) -> &AtomicU64| {
            f.as_ref().map_or(0, |f| pick(f).load(Ordering::Relaxed))
        };
        let f = &self.failures;
        StatsSnapshot {
            received: s.received.load(Ordering::Relaxed),
            deduped: s.deduped.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            emitted: s.emitted.load(Ordering::Relaxed),
            outcomes_received: s.outcomes_received.load(Ordering::Relaxed),
            outcomes_unattributed: s.outcomes_unattributed.load(Ordering::Relaxed),
            outcomes_deduped: s.outcomes_deduped.load(Ordering::Relaxed),
            outcomes_queued: s.outcomes_queued.load(Ordering::Relaxed),
            outcomes_dropped: s.outcomes_dropped.load(Ordering::Relaxed),
            outcomes_emitted: s.outcomes_emitted.load(Ordering::Relaxed),
            failed_spans: load(f, |f| &f.spans),
            failed_logs: load(f, |f| &f.logs),
            exported_spans: load(f, |f| &f.spans_ok),
            exported_logs: load(f, |f| &f.logs_ok),
        }
    }

    fn record_with(&self, e: &Exposure<'_>, ctx: Option<&dyn Context>) {
        let subject = &e.subject;
        if let Subject::Experiment(a) = subject {
            if !a.enrolled {
                return;
            }
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let time = SystemTime::now();
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let window = window_index(secs, self.window_secs);
        let (key, variant) = (subject.key(), subject.variant());
        if let Some(d) = &self.dedup {
            let k = dedup::key(e.unit, key, variant, e.config_version);
            if d.check(k, window) == Verdict::Duplicate {
                self.stats.deduped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.counts.add(key, variant);
        // The live SRM check tallies experiments only: a flagd flag's weights
        // may be JSONLogic and its branches may override `fractional`, so there
        // is no expected share to test against (docs/exposures.md).
        let experiment = match subject {
            Subject::Experiment(a) => Some(a.experiment),
            Subject::Flagd(_) => None,
        };
        // `None` at once (no context read) when the experiment declares no strata.
        let stratum = experiment
            .zip(ctx)
            .and_then(|(exp, ctx)| stratum::stratum(exp, ctx));
        if let Subject::Experiment(a) = subject {
            if a.reason == Reason::Split {
                self.srm.observe(a.experiment, variant, stratum.as_deref());
            }
        }
        let Some(tx) = &self.tx else { return };
        let parent = current_span();
        // The set id: an experiment's layer, a flagd flag's `flagSetId` metadata.
        let set = match subject {
            Subject::Experiment(a) => a.experiment.layer.as_ref().map(|l| &*l.key),
            Subject::Flagd(f) => f.flag.metadata.get("flagSetId").and_then(|v| v.as_str()),
        };
        let (text, ends) = Pending::pack([
            key,
            variant,
            e.unit,
            e.config_version,
            set.unwrap_or(""),
            subject.unit_attribute(),
            experiment.map_or("", |x| &x.salt_fingerprint),
            stratum.as_deref().unwrap_or(""),
        ]);
        let pending = Pending {
            text,
            ends,
            has_layer: set.is_some(),
            reason: subject.reason(),
            window,
            experiment: experiment.map(|x| (x.status.as_str(), x.epoch)),
            source: e.source.as_str(),
            time,
            parent,
        };
        match tx.try_send(Item::Exposure(pending)) {
            Ok(()) => self.stats.queued.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn record_outcome(&self, o: &Outcome<'_>) -> OutcomeVerdict {
        if o.parts.is_empty() {
            self.stats
                .outcomes_unattributed
                .fetch_add(1, Ordering::Relaxed);
            return OutcomeVerdict::Unattributed;
        }
        self.stats.outcomes_received.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = &self.outcome_dedup {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let window = window_index(secs, self.window_secs);
            if d.check(dedup::outcome_key(o.event_id), window) == Verdict::Duplicate {
                self.stats.outcomes_deduped.fetch_add(1, Ordering::Relaxed);
                return OutcomeVerdict::Duplicate;
            }
        }
        let Some(tx) = &self.tx else {
            return OutcomeVerdict::Recorded;
        };
        let parent = current_span();
        for part in o.parts {
            let item = Item::Outcome(PendingOutcome::of(o, part, parent.clone()));
            match tx.try_send(item) {
                Ok(()) => self.stats.outcomes_queued.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.stats.outcomes_dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        OutcomeVerdict::Recorded
    }
}

/// The span of the request being served, if it is valid (export parents on it).
fn current_span() -> Option<SpanContext> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.clone())
    })
}

/// The sink handed to transports (cheap to clone, `Arc` inside).
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Shared>);

impl Recorder {
    /// The pipeline's totals so far (also after the pipeline shut down).
    pub fn stats(&self) -> StatsSnapshot {
        self.0.snapshot()
    }
}

impl ExposureSink for Recorder {
    fn record(&self, exposure: &Exposure<'_>) {
        self.0.record_with(exposure, None);
    }
    fn record_in(&self, exposure: &Exposure<'_>, ctx: &dyn Context) {
        self.0.record_with(exposure, Some(ctx));
    }
    fn record_outcome(&self, outcome: &Outcome<'_>) -> OutcomeVerdict {
        self.0.record_outcome(outcome)
    }
}

/// What [`ExposurePipeline::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Totals at the end.
    pub stats: StatsSnapshot,
    /// Whether everything queued was exported (or failed) and flushed in time.
    pub completed: bool,
}

/// The running pipeline: owns the export task and the SRM timer.
#[derive(Debug)]
pub struct ExposurePipeline {
    shared: Arc<Shared>,
    otel: Option<Arc<OtelExport>>,
    worker: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<Instant>>,
    tasks: Vec<JoinHandle<()>>,
}

impl ExposurePipeline {
    /// Starts the pipeline; `otel` is `None` when export is off. Must be called
    /// inside a Tokio runtime.
    pub fn start(cfg: PipelineConfig, otel: Option<OtelExport>) -> ExposurePipeline {
        let window_secs = if cfg.dedup_window.is_zero() {
            0
        } else {
            cfg.dedup_window.as_secs_f64().ceil().max(1.0) as u64
        };
        let otel = otel.map(Arc::new);
        let (tx, worker, stop) = match &otel {
            Some(o) => {
                let (tx, rx) = mpsc::channel(cfg.queue.max(1));
                let (stop_tx, stop_rx) = oneshot::channel();
                (Some(tx), Some((rx, o.clone())), Some((stop_tx, stop_rx)))
            }
            None => (None, None, None),
        };
        let shared = Arc::new(Shared {
            dedup: (window_secs > 0).then(|| Dedup::new(cfg.dedup_capacity)),
            outcome_dedup: (window_secs > 0).then(|| Dedup::new(cfg.dedup_capacity)),
            window_secs,
            counts: Counts::default(),
            srm: Srm::new(cfg.srm),
            stats: Arc::default(),
            failures: otel.as_ref().map(|o| o.failures().clone()),
            tx,
            cfg,
        });
        let (stop_tx, worker) = match (worker, stop) {
            (Some((rx, o)), Some((stop_tx, stop_rx))) => {
                let handle =
                    export_task::start(rx, o, shared.stats.clone(), shared.cfg.unit_id, stop_rx);
                (Some(stop_tx), Some(handle))
            }
            _ => (None, None),
        };
        let srm_shared = shared.clone();
        let every = shared.cfg.srm_interval.max(Duration::from_millis(10));
        let srm_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                srm_shared.srm.evaluate();
            }
        });
        ExposurePipeline {
            shared,
            otel,
            worker,
            stop: stop_tx,
            tasks: vec![srm_task],
        }
    }

    /// The sink to hand to transports.
    pub fn recorder(&self) -> Recorder {
        Recorder(self.shared.clone())
    }

    /// The sink as a trait object.
    pub fn sink(&self) -> Arc<dyn ExposureSink> {
        Arc::new(self.recorder())
    }

    /// Whether exposures are exported (an OTLP endpoint is configured).
    pub fn exporting(&self) -> bool {
        self.otel.is_some()
    }

    /// The layer that makes the caller's trace current while a request runs,
    /// and gives each request a server span when exposure spans are on (a
    /// pass-through when export is off).
    pub fn trace_layer(&self) -> super::trace_context::TraceContextLayer {
        use super::trace_context::TraceContextLayer;
        match &self.otel {
            None => TraceContextLayer::default(),
            Some(o) => match o.tracer() {
                Some(t) => TraceContextLayer::new(Some(t.clone())),
                None => TraceContextLayer::propagate(),
            },
        }
    }

    /// Totals so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot()
    }

    /// The exposure counters.
    pub fn counts(&self) -> &Counts {
        &self.shared.counts
    }

    /// The SRM check (its latest results feed the gauge).
    pub fn srm(&self) -> &Srm {
        &self.shared.srm
    }

    /// The state the metric collector reads ([`super::metrics::ExposureMetrics::of`]).
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Follows config reloads so the SRM check forgets experiments that stopped
    /// running or whose assignment-relevant config changed.
    pub fn follow_reloads(&mut self, store: &Arc<Store>) {
        let mut events = store.subscribe();
        let store = store.clone();
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            while let Ok(_) | Err(RecvError::Lagged(_)) = events.recv().await {
                if let Some(snap) = store.load() {
                    shared.srm.retain(&snap);
                }
            }
        }));
    }

    /// Stops the pipeline: exports what is queued and flushes the span SDK, all within
    /// `grace`. Exposures recorded afterwards are dropped and counted.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let deadline = Instant::now() + grace;
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let mut completed = true;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(deadline);
        }
        if let Some(w) = self.worker.take() {
            completed &= tokio::time::timeout_at(deadline, w).await.is_ok();
        }
        if let Some(otel) = self.otel.take() {
            let left = deadline.saturating_duration_since(Instant::now());
            let flush = tokio::task::spawn_blocking(move || otel.shutdown_blocking(left));
            // A little slack over `left`: the SDK bounds itself by it.
            let bound = left + Duration::from_millis(250);
            completed &= tokio::time::timeout(bound, flush).await.is_ok();
        }
        let stats = self.shared.snapshot();
        completed &= stats.queued == stats.emitted;
        completed &= stats.outcomes_queued == stats.outcomes_emitted;
        ShutdownReport { stats, completed }
    }
}

impl Drop for ExposurePipeline {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
