//! Exposure attributes encoded once per experiment variant and spliced into
//! every log record that repeats them.
//!
//! Why: encoding a record's 15 attributes with prost (`KeyValue` by `KeyValue`,
//! each nested value measured again for every enclosing message) was about
//! 6,000 instructions per exposure under callgrind, half of what export added
//! to a call (docs/benchmarks.md, "Exposure export"). Twelve of those
//! attributes (flag key, variant, reason, version, provider, set id, unit
//! attribute, sticky, salt, status, epoch, source) are the same for every
//! exposure of one experiment variant, reason and config version; only the
//! unit id, the exposure id and the stratum change per unit. So the fixed runs
//! are encoded once and copied; the three per-unit attributes (all strings)
//! are written per record by [`super::wire`], the same bytes prost writes.
//!
//! Bounded: at most [`MAX_ENTRIES`] combinations are kept (about 300 bytes
//! each); past that the cache starts over, which costs a re-encode, never a
//! wrong byte (the key holds every input of the fixed runs).

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::bytes::BufMut;

use super::otlp_logs::{Attrs, RecordAttrs};

/// Most combinations remembered (a config with 1,000 experiments of three
/// variants, two reasons each, fits).
pub const MAX_ENTRIES: usize = 8192;

use super::wire::{put_str_attr, ATTRIBUTES};

/// Writes each attribute as one encoded `LogRecord.attributes` field: a
/// string by hand ([`super::wire`], it is also how the per-unit attributes of
/// every record are written), a bool or integer through a reused generated
/// `KeyValue` (the same slot logic as a record's own list, [`RecordAttrs`]),
/// which prost encodes onto `out` (those occur only in the cached runs).
/// `out` is a cached run's `Vec` or, for the per-unit attributes, the batch
/// buffer itself.
pub struct AttrBytes<'a, B: BufMut = Vec<u8>> {
    kv: &'a mut Vec<KeyValue>,
    out: &'a mut B,
}

impl<'a, B: BufMut> AttrBytes<'a, B> {
    /// Appends to `out`, using `kv` (one reusable slot) as scratch.
    pub fn new(kv: &'a mut Vec<KeyValue>, out: &'a mut B) -> Self {
        AttrBytes { kv, out }
    }

    fn emit(&mut self, write: impl FnOnce(&mut RecordAttrs<'_>)) {
        let mut a = RecordAttrs::new(self.kv);
        write(&mut a);
        a.finish();
        if let Some(kv) = self.kv.first() {
            prost::encoding::message::encode(ATTRIBUTES, kv, self.out);
        }
    }
}

impl<B: BufMut> Attrs for AttrBytes<'_, B> {
    fn str(&mut self, key: &'static str, value: &str) {
        put_str_attr(&mut *self.out, key, value.as_bytes());
    }
    fn bool(&mut self, key: &'static str, value: bool) {
        self.emit(|a| a.bool(key, value));
    }
    fn int(&mut self, key: &'static str, value: i64) {
        self.emit(|a| a.int(key, value));
    }
}

/// The encoded fixed runs of one combination, in record order: before the
/// unit id, between it and the exposure id, and after that (before the
/// stratum).
#[derive(Debug, Default)]
pub struct Runs {
    /// Before the unit id.
    pub head: Vec<u8>,
    /// Between the unit id and the exposure id.
    pub mid: Vec<u8>,
    /// After the exposure id.
    pub tail: Vec<u8>,
}

/// Encoded fixed runs by everything they are made of.
///
/// The map holds an index into `runs` rather than the runs themselves, so a
/// hit is one lookup that returns (a map returning a borrow of its value
/// from a branch needs a second lookup to satisfy the borrow checker: a
/// second hash of the key and a second key comparison for every exposure).
#[derive(Default)]
pub struct RunCache {
    map: HashMap<Box<[u8]>, usize, foldhash::fast::FixedState>,
    runs: Vec<Runs>,
    key: Vec<u8>,
    kv: Vec<KeyValue>,
}

impl RunCache {
    /// The runs for the key `key` writes (every input of the runs, each
    /// length-prefixed so that no two combinations share a key), built by
    /// `build` when they are not cached.
    pub fn get(
        &mut self,
        key: impl FnOnce(&mut Vec<u8>),
        build: impl FnOnce(&mut Vec<KeyValue>, &mut Runs),
    ) -> &Runs {
        self.key.clear();
        key(&mut self.key);
        if let Some(&i) = self.map.get(self.key.as_slice()) {
            return &self.runs[i];
        }
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
            self.runs.clear();
        }
        let mut runs = Runs::default();
        build(&mut self.kv, &mut runs);
        self.map.insert(self.key.as_slice().into(), self.runs.len());
        self.runs.push(runs);
        &self.runs[self.runs.len() - 1]
    }

    /// Combinations cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Appends `s` to a cache key, length first (the tests' keys).
#[cfg(test)]
pub fn key_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message as _;

    #[test]
    fn each_attribute_is_one_encoded_attributes_field() {
        let (mut kv, mut out) = (Vec::new(), Vec::new());
        let mut w = AttrBytes::new(&mut kv, &mut out);
        w.str("a", "long string value");
        w.int("b", -3);
        w.bool("c", true);
        w.str("d", "x");
        let r = opentelemetry_proto::tonic::logs::v1::LogRecord::decode(&out[..]).unwrap();
        let got: Vec<_> = r
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.clone().unwrap().value.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Value::StringValue("long string value".into())),
                ("b", Value::IntValue(-3)),
                ("c", Value::BoolValue(true)),
                ("d", Value::StringValue("x".into())),
            ]
        );
    }

    #[test]
    fn the_cache_builds_once_per_key_and_stays_bounded() {
        let mut c = RunCache::default();
        let mut builds = 0;
        for i in 0..3 {
            let runs = c.get(
                |k| key_str(k, if i == 1 { "other" } else { "same" }),
                |_, r| {
                    builds += 1;
                    r.head.push(i);
                },
            );
            assert_eq!(runs.head, [if i == 1 { 1 } else { 0 }]);
        }
        assert_eq!((builds, c.len()), (2, 2));
        // Keys "ab"+"c" and "a"+"bc" differ.
        let mut k1 = Vec::new();
        key_str(&mut k1, "ab");
        key_str(&mut k1, "c");
        let mut k2 = Vec::new();
        key_str(&mut k2, "a");
        key_str(&mut k2, "bc");
        assert_ne!(k1, k2);
        for i in 0..MAX_ENTRIES + 5 {
            c.get(|k| key_str(k, &i.to_string()), |_, _| {});
        }
        assert!(c.len() <= MAX_ENTRIES);
    }
}
