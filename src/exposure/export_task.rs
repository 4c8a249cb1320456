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
use std::time::SystemTime;

use opentelemetry::trace::SpanContext;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::bytes::{BufMut, Bytes};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::attr_cache::{AttrBytes, RunCache};
use super::id::{ExposureId, IdFields};
use super::otel::{OtelExport, EVENT_NAME};
use super::otlp_logs::{set_header, Attrs, LogBatch, LogsSender, RecordAttrs};
use super::outcome::{self, OUTCOME_EVENT};
use super::privacy::{hash_unit, UnitIdMode};
use super::queue::{Field, Item, Stats, View};
use super::stratum;
use super::wire::{nanos, Header};

/// Reused buffers for the attributes that need formatting.
#[derive(Default)]
struct Scratch {
    id_input: Vec<u8>,
    /// The one `KeyValue` per-unit attributes are encoded from.
    kv: Vec<KeyValue>,
}

/// The exported attributes of one exposure, in a stable order (the
/// attribute table in docs/exposures.md): fixed runs, the same for every
/// exposure of one experiment variant, reason and version
/// ([`fixed_head`], [`fixed_mid`], [`fixed_tail`]), around the per-unit ones.
fn write_exposure(p: &View<'_>, mode: UnitIdMode, scratch: &mut Scratch, w: &mut impl Attrs) {
    fixed_head(p, w);
    unit_id(p, mode, w);
    fixed_mid(p, w);
    exposure_id(p, &mut scratch.id_input, w);
    fixed_tail(p, w);
    stratum(p, mode, w);
}

fn fixed_head(p: &View<'_>, w: &mut impl Attrs) {
    w.str("feature_flag.key", p.get(Field::Experiment));
    w.str("feature_flag.result.variant", p.get(Field::Variant));
    w.str("feature_flag.result.reason", p.reason);
}

fn unit_id(p: &View<'_>, mode: UnitIdMode, w: &mut impl Attrs) {
    let unit = p.get(Field::Unit);
    match mode {
        UnitIdMode::Raw => w.str("feature_flag.context.id", unit),
        UnitIdMode::Hash => w.str("feature_flag.context.id", &hash_unit(unit)),
        UnitIdMode::Omit => {}
    }
}

fn fixed_mid(p: &View<'_>, w: &mut impl Attrs) {
    w.str("feature_flag.version", p.get(Field::ConfigVersion));
    w.str("feature_flag.provider.name", "cohortd");
    if p.has_layer {
        w.str("feature_flag.set.id", p.get(Field::Layer));
    }
}

fn exposure_id(p: &View<'_>, id_input: &mut Vec<u8>, w: &mut impl Attrs) {
    let id = ExposureId::derive_in(
        &IdFields {
            unit: p.get(Field::Unit),
            experiment: p.get(Field::Experiment),
            variant: p.get(Field::Variant),
            config_version: p.get(Field::ConfigVersion),
            window: p.window,
        },
        id_input,
    );
    let hex = id.hex();
    // Hex digits: always valid UTF-8.
    w.str(
        "cohortd.exposure.id",
        std::str::from_utf8(&hex).unwrap_or(""),
    );
}

fn fixed_tail(p: &View<'_>, w: &mut impl Attrs) {
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
}

fn stratum(p: &View<'_>, mode: UnitIdMode, w: &mut impl Attrs) {
    let s = p.get(Field::Stratum);
    match mode {
        _ if s.is_empty() => {}
        // As it is: written from the queued item, not copied first.
        UnitIdMode::Raw => w.str("cohortd.stratum", s),
        _ => {
            if let Some(s) = stratum::export(s, mode) {
                w.str("cohortd.stratum", &s);
            }
        }
    }
}

/// Everything the fixed runs are made of, as a [`RunCache`] key, in three
/// appends (sixteen small ones, a length and a field at a time, were about
/// 400 instructions per exposure under callgrind): a fixed-size head, then
/// the queued item's packed bytes of the experiment and variant, and of the
/// version, layer, unit attribute and salt (each pair of runs contiguous in
/// the item; the head holds every field's length, so no two combinations
/// share a key). The `&'static str`s (reason, source, status) are keyed by
/// address and length: one address and length is one text, so this never
/// picks wrong runs (one text at two addresses only takes two entries).
fn fixed_key(p: &View<'_>, k: &mut Vec<u8>) {
    const FIELDS: [Field; 6] = [
        Field::Experiment,
        Field::Variant,
        Field::ConfigVersion,
        Field::Layer,
        Field::UnitAttribute,
        Field::SaltFingerprint,
    ];
    let mut head = [0u8; 6 * 4 + 3 * 16 + 4 + 2];
    let mut at = 0;
    let mut put = |b: &[u8]| {
        head[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    };
    for f in FIELDS {
        put(&u32::try_from(p.get(f).len())
            .unwrap_or(u32::MAX)
            .to_le_bytes());
    }
    let (status, epoch) = p.experiment.unwrap_or(("", 0));
    for s in [p.reason, p.source, status] {
        put(&(s.as_ptr() as usize as u64).to_le_bytes());
        put(&(s.len() as u64).to_le_bytes());
    }
    put(&epoch.to_le_bytes());
    put(&[u8::from(p.experiment.is_some()), u8::from(p.has_layer)]);
    k.extend_from_slice(&head);
    let end = |i: usize| p.ends[i] as usize;
    k.extend_from_slice(p.text.get(..end(1)).unwrap_or(&[]));
    k.extend_from_slice(p.text.get(end(2)..end(6)).unwrap_or(&[]));
}

/// An exposure's attributes, appended to `out` (the batch's buffer, so they
/// are written once, not written to scratch and copied): the cached fixed
/// runs and the per-unit attributes, in [`write_exposure`]'s order.
fn encode_exposure_into(
    p: &View<'_>,
    mode: UnitIdMode,
    id_input: &mut Vec<u8>,
    kv: &mut Vec<KeyValue>,
    cache: &mut RunCache,
    out: &mut impl BufMut,
) {
    let runs = cache.get(
        |k| fixed_key(p, k),
        |kv, r| {
            fixed_head(p, &mut AttrBytes::new(kv, &mut r.head));
            fixed_mid(p, &mut AttrBytes::new(kv, &mut r.mid));
            fixed_tail(p, &mut AttrBytes::new(kv, &mut r.tail));
        },
    );
    out.put_slice(&runs.head);
    unit_id(p, mode, &mut AttrBytes::new(kv, out));
    out.put_slice(&runs.mid);
    exposure_id(p, id_input, &mut AttrBytes::new(kv, out));
    out.put_slice(&runs.tail);
    stratum(p, mode, &mut AttrBytes::new(kv, out));
}

/// Turns queued items into the records of the batch being built.
struct Builder {
    batch: LogBatch,
    /// When the items being added were taken from the queue (nanoseconds
    /// since the epoch; a record's `observed_time_unix_nano`): read once per
    /// drain, not once per record.
    observed: u64,
    scratch: Scratch,
    cache: RunCache,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
}

impl Builder {
    /// Adds one queued item, read where it lies in the drain buffer: moving
    /// each item out first (a few hundred bytes, twice) was part of the
    /// ~800 instructions of copies per exposure under callgrind.
    fn add(&mut self, item: &Item) {
        match item {
            Item::Exposure(p) => {
                let p = p.view();
                let span: Option<SpanContext> = self.otel.tracer().map(|tracer| {
                    let mut attrs = Vec::with_capacity(16);
                    write_exposure(&p, self.mode, &mut self.scratch, &mut attrs);
                    super::otel::exposure_span(tracer, attrs, p.time, p.parent.as_ref())
                });
                let sc = span.as_ref().or(p.parent.as_ref());
                let header = Header::new(EVENT_NAME, p.time, self.observed, sc);
                let (mode, cache) = (self.mode, &mut self.cache);
                let Scratch { id_input, kv } = &mut self.scratch;
                self.batch.add_written(&header, |out| {
                    encode_exposure_into(&p, mode, id_input, kv, cache, out)
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

/// Most queued items taken at once.
const DRAIN_MAX: usize = 256;

/// How long the builder on its own thread rests after draining the queue
/// (added to an exposure's export delay at most; small beside the batch
/// delay, `OTEL_BLRP_SCHEDULE_DELAY`, 1 s by default).
///
/// Each rest is a timer and a park and wake of the thread, a few thousand
/// instructions however many items the next drain finds, so the longer the
/// rest the less each exposure pays for it: at 2 ms it was about 200
/// instructions per exposure under callgrind (docs/benchmarks.md, "Exposure
/// export", export6). 10 ms keeps what waits in the queue small (1,000 items
/// at 100,000 exposures a second, of the queue's 8,192 by default) and the
/// delay it adds a hundredth of the batch delay.
const DRAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The nice value of the batch builder's thread (0 is normal, 19 the lowest;
/// reloads run at 10).
pub const EXPORT_NICE: i32 = 5;

/// Starts exporting: the batch builder ([`build_batches`]) on a thread of its
/// own at [`EXPORT_NICE`], the sender on the current runtime. The handle
/// finishes when both have (the builder closes the batch channel when it
/// ends, normally or by panicking).
///
/// On a current-thread runtime the builder stays a task on it, as it was
/// before: whoever picked that runtime asked for one thread (`cohortd serve`
/// runs a multi-threaded one; tests use the single thread to hold the
/// export still, e.g. to fill the queue against a dead collector). Likewise
/// when no thread or runtime can be started.
pub(super) fn start(
    rx: mpsc::Receiver<Item>,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
    stop: oneshot::Receiver<Instant>,
) -> JoinHandle<()> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let cfg = otel.logs_config();
    let (btx, brx) = mpsc::channel((cfg.max_queue / cfg.max_batch).max(1));
    let sender = tokio::spawn(send_batches(brx, otel.logs_sender()));
    if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
        tokio::spawn(build_batches(rx, otel, stats, mode, stop, btx, false));
        return sender;
    }
    let build = build_batches(rx, otel, stats, mode, stop, btx, true);
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
                crate::priority::lower_priority_to(EXPORT_NICE);
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
/// dropped), and closes the batch channel. With `pause` (on its own thread)
/// it rests [`DRAIN_PAUSE`] whenever it has drained the queue.
async fn build_batches(
    mut rx: mpsc::Receiver<Item>,
    otel: Arc<OtelExport>,
    stats: Arc<Stats>,
    mode: UnitIdMode,
    mut stop: oneshot::Receiver<Instant>,
    btx: mpsc::Sender<(Bytes, u64)>,
    pause: bool,
) {
    let cfg = otel.logs_config().clone();
    let mut b = Builder {
        batch: otel.log_batch(),
        observed: 0,
        scratch: Scratch::default(),
        cache: RunCache::default(),
        mode,
        otel,
        stats,
    };
    let mut buf = Vec::with_capacity(DRAIN_MAX);
    let mut flush_at: Option<Instant> = None;
    let deadline = loop {
        tokio::select! {
            biased;
            d = &mut stop => break d.ok(),
            n = rx.recv_many(&mut buf, DRAIN_MAX) => {
                if n == 0 {
                    break None;
                }
                b.observed = nanos(SystemTime::now());
                for item in &buf {
                    b.add(item);
                    if b.batch.len() >= cfg.max_batch {
                        b.flush(&btx).await;
                    }
                }
                buf.clear();
                if n < DRAIN_MAX && pause {
                    // The queue is drained. Waiting on it again would have the
                    // next exposure wake this thread from a request worker
                    // (a system call on the request path, then a context
                    // switch), once per exposure at moderate rates; pausing
                    // lets the next drain take what arrived meanwhile at once.
                    tokio::time::sleep(DRAIN_PAUSE).await;
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
    b.observed = nanos(SystemTime::now());
    while let Ok(item) = rx.try_recv() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let dropped = match item {
                Item::Exposure(_) => &b.stats.dropped,
                Item::Outcome(_) => &b.stats.outcomes_dropped,
            };
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        b.add(&item);
        if b.batch.len() >= cfg.max_batch {
            b.flush(&btx).await;
        }
    }
    b.flush(&btx).await;
}

#[cfg(test)]
mod tests {
    use super::super::queue::Pending;
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message as _;
    use std::time::{Duration, UNIX_EPOCH};

    /// An exposure: `flagd` has no experiment (status, epoch, salt); `layer`
    /// gives it a set id; `stratum` a stratum.
    fn pending(unit: &str, variant: &str, reason: &'static str, kind: u8) -> Pending {
        let (layer, stratum) = match kind {
            1 => ("layer-1", ""),
            2 => ("", "eu-west"),
            _ => ("", ""),
        };
        let (text, ends) = Pending::pack([
            "checkout",
            variant,
            unit,
            "00000000deadbeef",
            layer,
            "userId",
            if kind == 3 { "" } else { "0123456789abcdef" },
            stratum,
        ]);
        Pending {
            text,
            ends,
            has_layer: kind == 1,
            reason,
            window: 7,
            experiment: (kind != 3).then_some(("running", 2)),
            source: "assign",
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            parent: None,
        }
    }

    /// The encoded path (cached fixed runs, per-unit attributes spliced in)
    /// sends what decodes, with the generated type, to exactly the request
    /// the record-by-record builder produces: same attributes, same order,
    /// same header fields, for every kind of exposure and unit id mode, with
    /// cache hits and misses.
    #[test]
    fn cached_attribute_runs_decode_to_the_built_records() {
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        let mut items = Vec::new();
        for (i, reason) in ["split", "sticky", "split", "targeting_match"]
            .iter()
            .enumerate()
        {
            for kind in 0..4u8 {
                for unit in ["u-1", "a-much-longer-unit-id-0123456789"] {
                    let variant = if i % 2 == 0 { "control" } else { "treatment" };
                    items.push(pending(unit, variant, reason, kind));
                }
            }
        }
        for mode in [UnitIdMode::Raw, UnitIdMode::Hash, UnitIdMode::Omit] {
            let (mut old, mut new) = (
                LogBatch::new(&resource, "cohortd"),
                LogBatch::new(&resource, "cohortd"),
            );
            let (mut s_old, mut s_new) = (Scratch::default(), Scratch::default());
            let mut cache = RunCache::default();
            for p in &items {
                let p = &p.view();
                old.add(|r| {
                    set_header(r, EVENT_NAME, p.time, None);
                    let mut a = RecordAttrs::new(&mut r.attributes);
                    write_exposure(p, mode, &mut s_old, &mut a);
                    a.finish();
                });
                let header = Header::new(EVENT_NAME, p.time, nanos(SystemTime::now()), None);
                let Scratch { id_input, kv } = &mut s_new;
                new.add_written(&header, |out| {
                    encode_exposure_into(p, mode, id_input, kv, &mut cache, out)
                });
            }
            // Once per distinct variant and reason (three) and kind, where a
            // stratum is not part of the fixed runs (three kinds).
            assert_eq!(cache.len(), 3 * 3, "{mode:?}");
            // The one field that differs: when each record was built.
            let decode = |b: &mut LogBatch| {
                let mut r = ExportLogsServiceRequest::decode(b.take_encoded()).unwrap();
                for r in &mut r.resource_logs[0].scope_logs[0].log_records {
                    assert!(r.observed_time_unix_nano > 0);
                    r.observed_time_unix_nano = 0;
                }
                r
            };
            let (old, new) = (decode(&mut old), decode(&mut new));
            let records = &new.resource_logs[0].scope_logs[0].log_records;
            assert_eq!(records.len(), items.len());
            assert!(records.iter().all(|r| r.attributes.len() >= 9));
            let built = &old.resource_logs[0].scope_logs[0].log_records;
            for (i, (n, o)) in records.iter().zip(built).enumerate() {
                assert_eq!(n, o, "{mode:?}, record {i}");
            }
            assert_eq!(new, old, "{mode:?}");
        }
    }
}
