//! `AssignResponse` and `AssignAllResponse` written from bytes encoded once per
//! snapshot.
//!
//! Of an `AssignResponse`'s ten fields, eight are the same for every call that
//! serves a given variant of a given experiment under a given config: the
//! experiment key, epoch, salt fingerprint, status and layer (per experiment),
//! the variant key and value (per variant), and the config version (per
//! snapshot). [`Encoded`] holds those fields already encoded, so a call writes
//! three slices and the two fields that vary (`enrolled`, `reason`) instead of
//! allocating and copying eight strings and a `google.protobuf.Value`.
//!
//! Protobuf fields may come in any order, so the concatenation decodes to
//! exactly the message the generated builder
//! ([`crate::transport::cohortd_v1::assign_response`]) produces; fields at their
//! default are omitted as prost omits them. `tests/wire_reply.rs` checks the
//! two agree for every example config.
//!
//! The table is built by the first call that serves a snapshot (once per
//! reload, not per call; reloads themselves pay nothing) and kept until the
//! next snapshot replaces it.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::engine::Assignment;
use crate::snapshot::Experiment;
use crate::transport::convert::{json_to_proto, reason_to_proto};
use crate::Snapshot;

/// The encoded shared fields of every experiment of one snapshot.
#[derive(Debug)]
pub struct Encoded {
    /// The snapshot this was built from (weak: the table does not keep an old
    /// config alive, and the allocation stays reserved, so the pointer
    /// comparison in [`EncodedCache::get`] cannot see a reused address).
    snap: Weak<Snapshot>,
    /// `config_version` as field 6 of `AssignResponse`.
    version: Box<[u8]>,
    /// `config_version` as field 2 of `AssignAllResponse`.
    all_version: Box<[u8]>,
    /// In the order of `Snapshot::experiments`.
    experiments: Box<[ExperimentBytes]>,
}

#[derive(Debug)]
struct ExperimentBytes {
    /// Fields 1, 7, 8, 9 and 10.
    common: Box<[u8]>,
    /// Fields 2 and 3, per variant in the order of `Experiment::variants`.
    variants: Box<[Box<[u8]>]>,
}

/// One assignment: which shared bytes, plus the per-call fields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    experiment: u32,
    variant: u32,
    enrolled: bool,
    /// The `cohortd.v1.Reason` number.
    reason: u8,
}

/// A `string` field as prost writes it: omitted when empty.
fn string(tag: u32, s: &str, out: &mut Vec<u8>) {
    if !s.is_empty() {
        encoding::encode_key(tag, WireType::LengthDelimited, out);
        encoding::encode_varint(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }
}

impl Encoded {
    /// Encodes the shared fields of every experiment of `snap`.
    pub fn build(snap: &Arc<Snapshot>) -> Encoded {
        let mut version = Vec::new();
        string(6, snap.version(), &mut version);
        let mut all_version = Vec::new();
        string(2, snap.version(), &mut all_version);
        Encoded {
            snap: Arc::downgrade(snap),
            version: version.into(),
            all_version: all_version.into(),
            experiments: snap.experiments().iter().map(experiment_bytes).collect(),
        }
    }

    /// The item for `a`, an assignment made against this table's snapshot;
    /// `None` only if `a` does not come from it.
    pub fn item(&self, snap: &Snapshot, a: &Assignment<'_>) -> Option<Item> {
        let e = index_of(snap.experiments(), a.experiment)?;
        let v = index_of(&a.experiment.variants, a.variant).or_else(|| {
            a.experiment
                .variants
                .iter()
                .position(|v| v.key == a.variant.key)
        })?;
        self.experiments.get(e)?.variants.get(v)?;
        Some(Item {
            experiment: e as u32,
            variant: v as u32,
            enrolled: a.enrolled,
            reason: reason_to_proto(a.reason) as i32 as u8,
        })
    }

    fn parts(&self, item: &Item) -> (&[u8], &[u8]) {
        let e = &self.experiments[item.experiment as usize];
        (&e.common, &e.variants[item.variant as usize])
    }

    /// The encoded length of one `AssignResponse`.
    fn len(&self, item: &Item) -> usize {
        let (common, variant) = self.parts(item);
        common.len()
            + variant.len()
            + self.version.len()
            + if item.enrolled { 2 } else { 0 }
            + if item.reason != 0 { 2 } else { 0 }
    }

    fn write(&self, item: &Item, buf: &mut impl BufMut) {
        let (common, variant) = self.parts(item);
        buf.put_slice(common);
        buf.put_slice(variant);
        buf.put_slice(&self.version);
        if item.enrolled {
            encoding::bool::encode(4, &true, buf);
        }
        if item.reason != 0 {
            encoding::int32::encode(5, &i32::from(item.reason), buf);
        }
    }
}

fn experiment_bytes(e: &Experiment) -> ExperimentBytes {
    let mut common = Vec::new();
    string(1, &e.key, &mut common);
    if e.epoch != 0 {
        encoding::uint32::encode(7, &e.epoch, &mut common);
    }
    string(8, &e.salt_fingerprint, &mut common);
    string(9, e.status.as_str(), &mut common);
    string(10, e.layer.as_ref().map_or("", |l| &l.key), &mut common);
    let variants = e
        .variants
        .iter()
        .map(|v| {
            let mut out = Vec::new();
            string(2, &v.key, &mut out);
            encoding::message::encode(3, &json_to_proto(&v.value), &mut out);
            out.into_boxed_slice()
        })
        .collect();
    ExperimentBytes {
        common: common.into(),
        variants,
    }
}

/// The index of `one` in `all` when it is an element of it (by address).
fn index_of<T>(all: &[T], one: &T) -> Option<usize> {
    let size = std::mem::size_of::<T>().max(1);
    let offset = (one as *const T as usize).checked_sub(all.as_ptr() as usize)?;
    let i = offset / size;
    (offset % size == 0 && i < all.len()).then_some(i)
}

/// The [`Encoded`] table of the snapshot being served, rebuilt on the first
/// call after a reload.
#[derive(Debug, Default)]
pub struct EncodedCache(ArcSwapOption<Encoded>);

impl EncodedCache {
    /// The table for `snap`.
    pub fn get(&self, snap: &Arc<Snapshot>) -> Arc<Encoded> {
        if let Some(enc) = self.0.load_full() {
            if std::ptr::eq(enc.snap.as_ptr(), Arc::as_ptr(snap)) {
                return enc;
            }
        }
        let enc = Arc::new(Encoded::build(snap));
        self.0.store(Some(enc.clone()));
        enc
    }
}

/// Reading a reply back is never needed server-side; a reply reads as empty.
fn skip(
    wire_type: WireType,
    tag: u32,
    buf: &mut impl Buf,
    ctx: DecodeContext,
) -> Result<(), DecodeError> {
    encoding::skip_field(wire_type, tag, buf, ctx)
}

/// `cohortd.v1.AssignResponse`, encoded from an [`Encoded`] table.
#[derive(Debug, Default, Clone)]
pub struct AssignReply {
    enc: Option<Arc<Encoded>>,
    item: Item,
}

impl AssignReply {
    /// The reply for `item` of `enc`.
    pub fn new(enc: Arc<Encoded>, item: Item) -> Self {
        AssignReply {
            enc: Some(enc),
            item,
        }
    }
}

impl Message for AssignReply {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if let Some(enc) = &self.enc {
            enc.write(&self.item, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.enc.as_ref().map_or(0, |enc| enc.len(&self.item))
    }

    fn clear(&mut self) {
        *self = AssignReply::default();
    }
}

/// `cohortd.v1.AssignAllResponse`, encoded from an [`Encoded`] table.
#[derive(Debug, Default, Clone)]
pub struct AssignAllReply {
    enc: Option<Arc<Encoded>>,
    items: Vec<Item>,
}

impl AssignAllReply {
    /// The reply listing `items` of `enc`, in order.
    pub fn new(enc: Arc<Encoded>, items: Vec<Item>) -> Self {
        AssignAllReply {
            enc: Some(enc),
            items,
        }
    }
}

impl Message for AssignAllReply {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        let Some(enc) = &self.enc else {
            return;
        };
        for item in &self.items {
            encoding::encode_key(1, WireType::LengthDelimited, buf);
            encoding::encode_varint(enc.len(item) as u64, buf);
            enc.write(item, buf);
        }
        buf.put_slice(&enc.all_version);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        let Some(enc) = &self.enc else {
            return 0;
        };
        let items: usize = self
            .items
            .iter()
            .map(|item| {
                let len = enc.len(item);
                encoding::key_len(1) + encoding::encoded_len_varint(len as u64) + len
            })
            .sum();
        items + enc.all_version.len()
    }

    fn clear(&mut self) {
        *self = AssignAllReply::default();
    }
}
