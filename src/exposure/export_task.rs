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

use std::sync::atomic::Ordering;
use std::sync::Arc;

use opentelemetry::trace::SpanContext;
use prost::bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
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
                let r = self.batch.push();
                set_header(r, EVENT_NAME, p.time, sc.as_ref());
                let mut a = RecordAttrs::new(&mut r.attributes);
                write_exposure(&p, self.mode, &mut self.scratch, &mut a);
                a.finish();
                self.stats.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Item::Outcome(p) => {
                let rec = outcome::record(p, self.mode);
                let r = self.batch.push();
                set_header(r, OUTCOME_EVENT, rec.time, rec.parent.as_ref());
                let mut a = RecordAttrs::new(&mut r.attributes);
                for (k, v) in rec.attributes {
                    a.any(k.as_str(), v.into());
                }
                a.finish();
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

/// The export task: queued exposures become log records (and spans, when
/// they are on), queued outcomes log records; batches go out when full or
/// when the oldest record has waited the schedule delay. On `stop` it refuses
/// new items, exports what is queued until the deadline (counting the rest as
/// dropped), and waits for the sender to finish.
pub(super) async fn run_export(
    mut rx: mpsc::Receiver<Item>,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
    mut stop: oneshot::Receiver<Instant>,
) {
    let cfg = otel.logs_config().clone();
    let (btx, brx) = mpsc::channel((cfg.max_queue / cfg.max_batch).max(1));
    let sender = tokio::spawn(send_batches(brx, otel.logs_sender()));
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
    drop(btx);
    let _ = sender.await;
}
