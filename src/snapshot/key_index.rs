//! The experiment-key index of a snapshot: key -> position in its experiments.
//!
//! A snapshot's keys are fixed once compiled, so the index is built once per
//! reload and only read on the request path. A general-purpose map paid, per
//! `Assign` of a 20-byte key, a call to hash the bytes (foldhash's long-input
//! path), a SIMD group probe and a `memcmp` call: about 110 instructions of a
//! 1,170-instruction assignment (callgrind, `one_assignment`). Here the hash is
//! one or two independent multiply-folds of the key's 8-byte words (for keys up
//! to 32 bytes), inlined with the lookup into the caller; the table is open
//! addressing over a power of two at least twice the number of keys, so a probe
//! usually ends at the first slot; each slot keeps 32 bits of the hash beside
//! the position, so a key is compared (inline, [`same_bytes`]) only when those
//! match. Every word of the key is hashed: keys that differ only in the middle
//! (`feature.payments.x.enabled`, `feature.checkout.x.enabled`) still spread.

use crate::engine::bucket::word;
use crate::engine::context::same_bytes;

/// Maps each experiment key to its position. The keys themselves are not kept
/// here: a lookup compares the key of the item it lands on
/// ([`KeyIndex::find`]), which it loads anyway, so a hit reads one array and
/// one bounds check fewer than through a copy of the keys.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    /// `(hash tag, position + 1)`; a position of 0 marks an empty slot.
    slots: Box<[(u32, u32)]>,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex::new(&[] as &[&str], |k| k)
    }
}

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xd6e8_feb8_6659_fd93;
const K2: u64 = 0xa076_1d64_78bd_642f;
const K3: u64 = 0xe703_7ed1_a0b4_28db;

/// The 128-bit product of `a` and `b`, folded to 64 bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of a key. Up to 32 bytes (nearly every key) it is at most two
/// folded multiplies, independent of each other so the CPU overlaps them: each
/// multiplies two of the key's (overlapping) 8-byte words, xored with
/// constants. Every byte of the key reaches an operand, so keys that differ
/// anywhere (the middle included) spread. The length enters as `len * K2`, a
/// dense pattern: xored in as it is, a length difference of a few bits could
/// cancel a one-byte difference of the last word (`abaaaaaaa` and
/// `abaaaaaaaa`: words `baaaaaaa` and `aaaaaaaa`, lengths 9 and 10, and
/// `b ^ a == 9 ^ 10`). Longer keys fold every word in, one after the other.
#[inline(always)]
fn hash(key: &[u8]) -> u64 {
    let n = key.len();
    let at = |i: usize| u64::from_le_bytes(key[i..i + 8].try_into().unwrap_or([0; 8]));
    let len = n as u64;
    let dense = len.wrapping_mul(K2);
    match n {
        0..=8 => fold(word(key) ^ K0, len ^ K1),
        9..=16 => fold(at(0) ^ K0, at(n - 8) ^ K1 ^ dense),
        17..=32 => fold(at(0) ^ K0, at(8) ^ K1) ^ fold(at(n - 16) ^ K2, at(n - 8) ^ K3 ^ dense),
        _ => {
            // The length is mixed in first, on its own: xored straight into
            // the first word it could cancel a difference in the key's first
            // byte (`aaaaaaaaa` and `baaaaaaaaa`: 9 ^ 10 == 0x61 ^ 0x62).
            let mut h = fold(K0 ^ len, K1);
            let mut i = 0;
            while i + 8 < n {
                h = fold(h ^ at(i), K1);
                i += 8;
            }
            fold(h ^ at(n - 8), K1)
        }
    }
}

impl KeyIndex {
    /// An index of the keys of `items` (as `key_of` reads them), by position;
    /// a key given twice keeps its first position (compiling refuses duplicate
    /// keys before this).
    pub fn new<T>(items: &[T], key_of: impl Fn(&T) -> &str) -> KeyIndex {
        let size = (items.len() * 2).max(4).next_power_of_two();
        let mut slots = vec![(0u32, 0u32); size].into_boxed_slice();
        let mask = size - 1;
        for (pos, item) in items.iter().enumerate() {
            let k = key_of(item);
            let h = hash(k.as_bytes());
            let mut i = h as usize & mask;
            loop {
                let (tag, p) = slots[i];
                if p == 0 {
                    slots[i] = ((h >> 32) as u32, pos as u32 + 1);
                    break;
                }
                if tag == (h >> 32) as u32 && key_of(&items[p as usize - 1]) == k {
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        KeyIndex { slots }
    }

    /// The item of `items` (the sequence the index was built from, in the same
    /// order) whose key, as `key_of` reads it, is `key`. Inlined into its
    /// callers: the call and the saved registers were a fifth of the lookup.
    #[inline(always)]
    pub fn find<'a, T>(
        &self,
        key: &str,
        items: &'a [T],
        key_of: impl Fn(&T) -> &str,
    ) -> Option<&'a T> {
        let h = hash(key.as_bytes());
        let tag = (h >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let (t, p) = *self.slots.get(i)?;
            if p == 0 {
                return None;
            }
            if t == tag {
                let item = items.get(p as usize - 1)?;
                if same_bytes(key_of(item).as_bytes(), key.as_bytes()) {
                    return Some(item);
                }
            }
            i = (i + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position `find` gives `key` among `keys`.
    fn position(index: &KeyIndex, keys: &[String], key: &str) -> Option<usize> {
        let found = index.find(key, keys, |k| k)?;
        keys.iter().position(|k| std::ptr::eq(k, found))
    }

    #[test]
    fn finds_every_key_and_no_other() {
        for n in [0usize, 1, 2, 3, 7, 100, 1000] {
            let keys: Vec<String> = (0..n)
                .map(|i| format!("feature.{i:04}.new-flow.enabled"))
                .collect();
            let index = KeyIndex::new(&keys, |k| k);
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(position(&index, &keys, k), Some(i), "{k}");
            }
            for probe in ["", "f", "feature.", "feature.0000.new-flow.enabled2", "x"] {
                assert_eq!(position(&index, &keys, probe), None, "{probe}");
            }
        }
    }

    #[test]
    fn every_length_and_byte_counts() {
        // Keys of every length up to 40 that differ in one byte at every
        // position: the hash reads every byte.
        let mut keys: Vec<String> = Vec::new();
        // Fill and changed bytes one bit apart (`a`, `b`, `c`, `` ` ``), as
        // the small length differences of neighbouring keys are.
        for len in 1..=40usize {
            for fill in [b'a', b'x', b'0'] {
                for at in 0..len {
                    for to in [b'b', b'c', b'`'] {
                        let mut k = vec![fill; len];
                        k[at] = to;
                        keys.push(String::from_utf8(k).unwrap());
                    }
                }
                keys.push(String::from_utf8(vec![fill; len]).unwrap());
            }
        }
        keys.sort();
        keys.dedup();
        let index = KeyIndex::new(&keys, |k| k);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(position(&index, &keys, k), Some(i), "{k}");
        }
        assert_eq!(position(&index, &keys, &"a".repeat(41)), None);
        let distinct: std::collections::HashSet<u64> =
            keys.iter().map(|k| hash(k.as_bytes())).collect();
        assert_eq!(distinct.len(), keys.len());
    }
}
