//! The export task: drains the exposure queue into OTLP log records (and,
//! when spans are on, exposure spans through the SDK tracer), batches them by
//! size and delay, and hands each encoded batch to a sender task.
//!
//! Two tasks so that building the next batch overlaps the network call of the
//! previous one. Between them sits a bounded channel of encoded batches (about
//! `OTEL_BLRP_MAX_QUEUE_SIZE` records); when it is full the builder waits, the
//! exposure queue fills, and new exposures are dropped and counted on the
//! request path (`exposures_dropped_total`), so every bound is cohortd's and
//! every loss is counted.
//!
//! The builder runs on a thread of its own (a single-threaded runtime, for the
//! batch delay's timer) at nice [`EXPORT_NICE`], not on the tokio workers that
//! answer requests: building and encoding records is most of what export
//! costs, and a worker busy with a batch is a request waiting (p99 with export
//! on was about twice export off). At a lower priority the kernel runs requests
//! first and the builder in the gaps; it is not as low as a reload's, because
//! under sustained load the builder needs a steady share to keep up (the queue
//! drops what it cannot hold). The sender stays on the server's runtime, where
//! the gRPC channel lives.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::SpanContext;
use prost::bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::id::{ExposureId, IdFields};
use super::otel::{OtelExport, EVENT_NAME};
use super::otlp_logs::{set_header, Attrs, LogBatch, LogsSender, RecordAttrs};
use super::outcome::{self, OUTCOME_EVENT};
use super::privacy::{hash_unit, UnitIdMode};
use super::queue::{Field, Item, Pending, Stats};
use super::stratum;

/// Reused buffers for the attributes that need formatting.
#[derive(Default)]
struct Scratch {
    id_input: Vec<u8>,
    id_hex: String,
}

/// The exported attributes of one exposure, in a stable order (the
/// attribute table in docs/exposures.md).
fn write_exposure(p: &Pending, mode: UnitIdMode, scratch: &mut Scratch, w: &mut impl Attrs) {
    let (experiment, variant, unit) = (
        p.get(Field::Experiment),
        p.get(Field::Variant),
        p.get(Field::Unit),
    );
    let version = p.get(Field::ConfigVersion);
    let id = ExposureId::derive_in(
        &IdFields {
            unit,
            experiment,
            variant,
            config_version: version,
            window: p.window,
        },
        &mut scratch.id_input,
    );
    w.str("feature_flag.key", experiment);
    w.str("feature_flag.result.variant", variant);
    w.str("feature_flag.result.reason", p.reason);
    match mode {
        UnitIdMode::Raw => w.str("feature_flag.context.id", unit),
        UnitIdMode::Hash => w.str("feature_flag.context.id", &hash_unit(unit)),
        UnitIdMode::Omit => {}
    }
    w.str("feature_flag.version", version);
    w.str("feature_flag.provider.name", "cohortd");
    if p.has_layer {
        w.str("feature_flag.set.id", p.get(Field::Layer));
    }
    id.write_hex(&mut scratch.id_hex);
    w.str("cohortd.exposure.id", &scratch.id_hex);
    w.str("cohortd.unit_attribute", p.get(Field::UnitAttribute));
    match p.experiment {
        Some((status, epoch)) => {
            w.bool("cohortd.sticky", p.reason == "sticky");
            w.str("cohortd.salt_fingerprint", p.get(Field::SaltFingerprint));
            w.str("cohortd.experiment.status", status);
            w.int("cohortd.epoch", i64::from(epoch));
        }
        None => w.str("cohortd.flag_format", "flagd"),
    }
    w.str("cohortd.source", p.source);
    let s = p.get(Field::Stratum);
    if let Some(s) = (!s.is_empty()).then(|| stratum::export(s, mode)).flatten() {
        w.str("cohortd.stratum", &s);
    }
}

/// Turns queued items into the records of the batch being built.
struct Builder {
    batch: LogBatch,
    scratch: Scratch,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
}

impl Builder {
    fn add(&mut self, item: Item) {
        match item {
            Item::Exposure(p) => {
                let sc: Option<SpanContext> = match self.otel.tracer() {
                    Some(tracer) => {
                        let mut attrs = Vec::with_capacity(16);
                        write_exposure(&p, self.mode, &mut self.scratch, &mut attrs);
                        Some(super::otel::exposure_span(
                            tracer,
                            attrs,
                            p.time,
                            p.parent.as_ref(),
                        ))
                    }
                    None => p.parent.clone(),
                };
                let (mode, scratch) = (self.mode, &mut self.scratch);
                self.batch.add(|r| {
                    set_header(r, EVENT_NAME, p.time, sc.as_ref());
                    let mut a = RecordAttrs::new(&mut r.attributes);
                    write_exposure(&p, mode, scratch, &mut a);
                    a.finish();
                });
                self.stats.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Item::Outcome(p) => {
                let rec = outcome::record(p, self.mode);
                self.batch.add(|r| {
                    set_header(r, OUTCOME_EVENT, rec.time, rec.parent.as_ref());
                    let mut a = RecordAttrs::new(&mut r.attributes);
                    for (k, v) in rec.attributes {
                        a.any(k.as_str(), v.into());
                    }
                    a.finish();
                });
                self.stats.outcomes_emitted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Encodes the batch and queues it for the sender (waiting while the
    /// sender is `OTEL_BLRP_MAX_QUEUE_SIZE` records behind).
    async fn flush(&mut self, to: &mpsc::Sender<(Bytes, u64)>) {
        if self.batch.is_empty() {
            return;
        }
        let n = self.batch.len() as u64;
        let body = self.batch.take_encoded();
        if to.send((body, n)).await.is_err() {
            // The sender task is gone (it only ends when this side closes):
            // count the records as not delivered.
            self.otel.failures().logs.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Sends encoded batches one at a time until the builder closes the channel.
async fn send_batches(mut rx: mpsc::Receiver<(Bytes, u64)>, mut sender: LogsSender) {
    while let Some((body, n)) = rx.recv().await {
        sender.send(body, n).await;
    }
}

/// The nice value of the batch builder's thread (0 is normal, 19 the lowest;
/// reloads run at 10).
pub const EXPORT_NICE: i32 = 5;

/// Starts exporting: the batch builder ([`build_batches`]) on a thread of its
/// own at [`EXPORT_NICE`], the sender on the current runtime. The handle
/// finishes when both have (the builder closes the batch channel when it
/// ends, normally or by panicking). When no thread or runtime can be started
/// the builder runs as a task on the current runtime instead, as it did before.
pub(super) fn start(
    rx: mpsc::Receiver<Item>,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
    stop: oneshot::Receiver<Instant>,
) -> JoinHandle<()> {
    let cfg = otel.logs_config();
    let (btx, brx) = mpsc::channel((cfg.max_queue / cfg.max_batch).max(1));
    let sender = tokio::spawn(send_batches(brx, otel.logs_sender()));
    let build = build_batches(rx, otel, stats, mode, stop, btx);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    // Shared so that a failed spawn, which drops its closure, leaves the
    // builder here.
    let job = Arc::new(Mutex::new(Some(build)));
    let take = |j: &Mutex<Option<_>>| j.lock().unwrap_or_else(|p| p.into_inner()).take();
    let spawned = runtime.map_err(drop).and_then(|rt| {
        let theirs = Arc::clone(&job);
        std::thread::Builder::new()
            .name("cohortd-export".into())
            .spawn(move || {
                crate::reload::background::lower_priority_to(EXPORT_NICE);
                if let Some(build) = take(&theirs) {
                    rt.block_on(build);
                }
            })
            .map_err(drop)
    });
    if spawned.is_err() {
        if let Some(build) = take(&job) {
            tracing::debug!("no export thread; building batches on the runtime");
            tokio::spawn(build);
        }
    }
    sender
}

/// The batch builder: queued exposures become log records (and spans, when
/// they are on), queued outcomes log records; batches go out when full or
/// when the oldest record has waited the schedule delay. On `stop` it refuses
/// new items, exports what is queued until the deadline (counting the rest as
/// dropped), and closes the batch channel.
async fn build_batches(
    mut rx: mpsc::Receiver<Item>,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
    mut stop: oneshot::Receiver<Instant>,
    btx: mpsc::Sender<(Bytes, u64)>,
) {
    let cfg = otel.logs_config().clone();
    let mut b = Builder {
        batch: otel.log_batch(),
        scratch: Scratch::default(),
        mode,
        otel,
        stats,
    };
    let mut buf = Vec::with_capacity(256);
    let mut flush_at: Option<Instant> = None;
    let deadline = loop {
        tokio::select! {
            biased;
            d = &mut stop => break d.ok(),
            n = rx.recv_many(&mut buf, 256) => {
                if n == 0 {
                    break None;
                }
                for item in buf.drain(..) {
                    b.add(item);
                    if b.batch.len() >= cfg.max_batch {
                        b.flush(&btx).await;
                    }
                }
            }
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                b.flush(&btx).await;
            }
        }
        flush_at = match (b.batch.is_empty(), flush_at) {
            (true, _) => None,
            (false, None) => Some(Instant::now() + cfg.delay),
            (false, at) => at,
        };
    };
    // Shutting down: refuse new items, export what is queued while time lasts.
    rx.close();
    while let Ok(item) = rx.try_recv() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let dropped = match item {
                Item::Exposure(_) => &b.stats.dropped,
                Item::Outcome(_) => &b.stats.outcomes_dropped,
            };
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        b.add(item);
        if b.batch.len() >= cfg.max_batch {
            b.flush(&btx).await;
        }
    }
    b.flush(&btx).await;
}
