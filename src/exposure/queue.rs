//! What travels from the request path to the export task: the queued item
//! (an exposure packed into one inline buffer, or an outcome) and the running totals
//! both sides bump. Its own module so the pipeline (which queues) and the
//! export task (which drains) both depend on it and not on each other.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use opentelemetry::trace::SpanContext;
use smallvec::SmallVec;

use super::outcome::PendingOutcome;

/// Counts of items the exporters delivered, and failed to deliver (collector
/// down, slow or refusing), by signal.
#[derive(Debug, Default)]
pub struct ExportFailures {
    /// Spans in failed export calls.
    pub spans: AtomicU64,
    /// Log records in failed export calls.
    pub logs: AtomicU64,
    /// Spans the collector accepted.
    pub spans_ok: AtomicU64,
    /// Log records the collector accepted.
    pub logs_ok: AtomicU64,
}

/// Running totals of the pipeline.
#[derive(Debug, Default)]
pub struct Stats {
    /// Enrolled exposures received.
    pub received: AtomicU64,
    /// Exposures skipped as duplicates within the dedup window.
    pub deduped: AtomicU64,
    /// Exposures queued for export.
    pub queued: AtomicU64,
    /// Exposures dropped because the queue was full or closed (or the shutdown
    /// grace ran out).
    pub dropped: AtomicU64,
    /// Exposures turned into log records of an export batch.
    pub emitted: AtomicU64,
    /// Outcome events received (validated, attributed to an experiment).
    pub outcomes_received: AtomicU64,
    /// Outcome events of units enrolled in no matching experiment (not exported).
    pub outcomes_unattributed: AtomicU64,
    /// Outcome events skipped as retries of an event id seen in the window.
    pub outcomes_deduped: AtomicU64,
    /// Outcome records queued for export.
    pub outcomes_queued: AtomicU64,
    /// Outcome records dropped (queue full or closed, or the grace ran out).
    pub outcomes_dropped: AtomicU64,
    /// Outcome records turned into log records of an export batch.
    pub outcomes_emitted: AtomicU64,
}

/// The string fields of a queued exposure, in the order they are packed.
#[derive(Clone, Copy)]
pub(super) enum Field {
    Experiment,
    Variant,
    Unit,
    ConfigVersion,
    Layer,
    UnitAttribute,
    SaltFingerprint,
    /// The unit's stratum (`srm.strata`); empty when there is none.
    Stratum,
}

/// Bytes of a queued exposure's strings kept inside the item itself; longer
/// ones (long unit ids or keys) take one heap buffer instead.
pub(super) const INLINE: usize = 128;

/// An exposure waiting in the export queue. Its strings are packed into one
/// buffer inside the item (the queue's slots are reused, so recording an
/// exposure allocates nothing when they fit in [`INLINE`] bytes, as the ids,
/// keys and 16-digit versions of typical configs do; one allocation when they
/// do not). The stratum, when the experiment declares one, shares the buffer.
pub(super) struct Pending {
    pub(super) text: SmallVec<[u8; INLINE]>,
    pub(super) ends: [u32; 8],
    pub(super) has_layer: bool,
    pub(super) reason: &'static str,
    pub(super) window: u64,
    /// An experiment's status and epoch; `None` for a flagd flag, which has
    /// neither (nor a salt: its salt field is empty and not exported).
    pub(super) experiment: Option<(&'static str, u32)>,
    pub(super) source: &'static str,
    pub(super) time: SystemTime,
    pub(super) parent: Option<SpanContext>,
}

impl Pending {
    pub(super) fn pack(fields: [&str; 8]) -> (SmallVec<[u8; INLINE]>, [u32; 8]) {
        let mut text = SmallVec::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; 8];
        for (i, f) in fields.iter().enumerate() {
            text.extend_from_slice(f.as_bytes());
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        (text, ends)
    }

    /// The item's fields, read as text. Each field was a whole `str`, so the
    /// packed bytes are valid UTF-8; they are checked again here, on the
    /// export side, rather than trusted, but once per item: checking each
    /// field as it was read (eleven reads per exposure) was about 1,000
    /// instructions per exposure under callgrind.
    pub(super) fn view(&self) -> View<'_> {
        let all = std::str::from_utf8(&self.text).unwrap_or("");
        let mut fields = [""; 8];
        let mut start = 0;
        for (f, &end) in fields.iter_mut().zip(&self.ends) {
            let end = end as usize;
            *f = all.get(start..end).unwrap_or("");
            start = end.max(start);
        }
        View { p: self, fields }
    }
}

/// A queued exposure with its fields read ([`Pending::view`]); the rest of
/// the item through `Deref`.
pub(super) struct View<'a> {
    p: &'a Pending,
    fields: [&'a str; 8],
}

impl<'a> View<'a> {
    /// One field.
    pub(super) fn get(&self, f: Field) -> &'a str {
        self.fields[f as usize]
    }
}

impl std::ops::Deref for View<'_> {
    type Target = Pending;
    fn deref(&self) -> &Pending {
        self.p
    }
}

/// What the export queue carries.
pub(super) enum Item {
    Exposure(Pending),
    Outcome(PendingOutcome),
}
