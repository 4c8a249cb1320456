//! The attributes one experiment reads, gathered from the context in one walk.
//!
//! Evaluating one experiment reads its unit attribute and the attribute of each
//! targeting condition: five lookups for the template experiment. Contexts are
//! searched by a scan ([`super::context::SCAN_MAX`]), and each lookup scanned
//! from the start, so for the template the scans cost more than every decision
//! together (callgrind: about 390 of 1,250 instructions, JSON context; more for
//! a `Struct`, whose names come in key order and put `userId` last). Compiling
//! lists the distinct names an experiment reads once ([`Reads`]); a call walks
//! the context once ([`gather`]), matching each attribute's name against that
//! short list, and stops as soon as every name is found.

use std::sync::Arc;

use super::bytes::{same_name, Words};

/// At most this many distinct attributes of one experiment are gathered; the
/// conditions on any further attribute look theirs up on their own. A fixed
/// bound keeps a call's buffer on the stack.
pub const READS_MAX: usize = 8;

/// The distinct attribute names an experiment reads, the unit attribute first.
#[derive(Debug, Clone)]
pub struct Reads {
    /// `Arc`s, so experiments that read alike share one list's names: a
    /// compile gives the experiments of one targeting copies of one `Reads`
    /// (`crate::snapshot::targeting_cache`), one allocation each.
    names: Vec<Arc<str>>,
    /// Each name's words, at its position ([`Words::NOTHING`] past the last):
    /// the candidate the shape picks is compared with these, inline, without
    /// loading the name's pointer and then its bytes.
    words: [Words; READS_MAX],
    /// For each [`Reads::shape`] of a name (its length and first byte, mixed
    /// by `mix`): the position of the one name of that shape, [`MANY`] when
    /// several share it, [`NONE`] when none has it. Most of a context's other
    /// attributes are passed over by this one load, and the names read are
    /// found without a search: `mix` is chosen when the list is built so that
    /// names of one length (`userId`, `region`) still get shapes of their own.
    by_shape: [u8; 64],
    /// The multiplier of the first byte in [`Reads::shape`].
    mix: u32,
    /// Bit `len % 64` set for the length of each name: a context attribute
    /// whose length no name has is passed over on its length alone, before
    /// its first byte is read (with `mix != 0`, the shape reads it).
    lens: u64,
}

const NONE: u8 = u8::MAX;
const MANY: u8 = u8::MAX - 1;

impl Default for Reads {
    fn default() -> Self {
        Reads {
            names: Vec::new(),
            words: [Words::NOTHING; READS_MAX],
            by_shape: [NONE; 64],
            mix: 0,
            lens: 0,
        }
    }
}

impl Reads {
    /// The names read, the unit attribute (`hashKey`) first.
    pub fn new(hash_key: &str) -> Reads {
        let mut r = Reads::default();
        r.add(hash_key);
        r
    }

    /// The position of `name`, added if it is new; `None` when it is new and
    /// [`READS_MAX`] names are already listed.
    pub fn add(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| **n == *name) {
            return Some(i);
        }
        if self.names.len() == READS_MAX {
            return None;
        }
        self.words[self.names.len()] = Words::new(name.as_bytes());
        self.names.push(name.into());
        self.lens |= 1 << (name.len() % 64);
        let at = self.names.len() - 1;
        match &mut self.by_shape[shape::<true>(name, self.mix)] {
            slot @ &mut NONE => *slot = at as u8,
            // A shared shape: choose the multiplier again, for all the names.
            _ => self.index(),
        }
        Some(at)
    }

    /// Chooses `mix` (the first of a few odd multipliers, or 0 to use the
    /// length alone, that gives every name a shape of its own; else the one
    /// leaving the fewest shared) and fills `by_shape`.
    fn index(&mut self) {
        let shared = |mix: u32| {
            let mut seen = 0u64;
            let mut shared = 0;
            for n in &self.names {
                let bit = 1u64 << shape::<true>(n, mix);
                shared += usize::from(seen & bit != 0);
                seen |= bit;
            }
            shared
        };
        self.mix = [0, 1, 3, 5, 7, 9, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43]
            .into_iter()
            .min_by_key(|&m| shared(m))
            .unwrap_or(0);
        self.by_shape = [NONE; 64];
        for (at, n) in self.names.iter().enumerate() {
            let slot = &mut self.by_shape[shape::<true>(n, self.mix)];
            *slot = match *slot {
                NONE => at as u8,
                _ => MANY,
            };
        }
    }

    /// The names, in position order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is listed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The position of `name`, if listed.
    #[inline(always)]
    fn find<const FIRST: bool>(&self, name: &str) -> Option<usize> {
        if FIRST && self.lens & (1 << (name.len() % 64)) == 0 {
            return None;
        }
        // One comparison passes over an attribute not read: NONE and MANY
        // are both past the end of `names`.
        let i = self.by_shape[shape::<FIRST>(name, self.mix)];
        match self.words.get(i as usize) {
            // One candidate: its words decide (lengths first). The first
            // byte is not compared on its own, as `same_name` does for a
            // scan: the shape already sent most other names elsewhere. A
            // position past the names holds `Words::NOTHING`, which no name
            // matches; a name over 16 bytes is compared in full.
            Some(w) => w
                .same(name.as_bytes(), || {
                    self.names
                        .get(i as usize)
                        .map_or(&b""[..], |n| n.as_bytes())
                })
                .then_some(i as usize),
            None if i == MANY => self.names.iter().position(|n| same_name(n, name)),
            None => None,
        }
    }
}

/// A name's slot in [`Reads::by_shape`]: its length plus its first byte times
/// `mix`, modulo 64. Two loads and three operations per attribute of the
/// context, in registers; without `FIRST` (for `mix == 0`, the same value)
/// the length alone.
#[inline(always)]
fn shape<const FIRST: bool>(name: &str, mix: u32) -> usize {
    if !FIRST {
        return name.len() % 64;
    }
    let first = name.as_bytes().first().map_or(0, |&b| b as u32);
    (name.len() as u32).wrapping_add(first.wrapping_mul(mix)) as usize % 64
}

/// Fills `out[i]` (`out` is as long as `reads` and all `None` on entry: the
/// caller's buffer is fresh, so it is not cleared again) with the value of the
/// entry named `reads.names()[i]`; `put` stores an entry's value into its slot
/// (as an `Attr`), only for the entries read. Stops at the first entry
/// after which every name is found: what `Context::get` gives for each name.
///
/// The names of `entries` must be distinct, as they are in every context that
/// calls this (a JSON map's or a `Struct`'s keys; a wire context, where a later
/// duplicate replaced the earlier entry when decoded): each name read is then
/// found once, so the walk counts the names found without first checking
/// whether the slot is already filled (a load and a compare per name read).
#[inline]
pub fn gather<'a, V, T, I, F>(reads: &Reads, entries: I, put: F, out: &mut [Option<T>])
where
    I: IntoIterator<Item = (&'a str, V)>,
    F: Fn(V, &mut Option<T>),
{
    // Most experiments read names of distinct lengths (`mix == 0`): their
    // walk does not read each attribute's first byte.
    match reads.mix {
        0 => walk::<_, _, _, _, false>(reads, entries, put, out),
        _ => walk::<_, _, _, _, true>(reads, entries, put, out),
    }
}

#[inline(always)]
fn walk<'a, V, T, I, F, const FIRST: bool>(reads: &Reads, entries: I, put: F, out: &mut [Option<T>])
where
    I: IntoIterator<Item = (&'a str, V)>,
    F: Fn(V, &mut Option<T>),
{
    let mut left = out.len();
    if left == 0 {
        return;
    }
    for (name, value) in entries {
        let Some(i) = reads.find::<FIRST>(name) else {
            continue;
        };
        if let Some(slot) = out.get_mut(i) {
            put(value, slot);
            left -= 1;
            if left == 0 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_bounded_and_unit_first() {
        let mut r = Reads::new("userId");
        assert_eq!(r.add("region"), Some(1));
        assert_eq!(r.add("userId"), Some(0));
        assert_eq!(r.add("region"), Some(1));
        for i in 2..READS_MAX {
            assert_eq!(r.add(&format!("a{i}")), Some(i));
        }
        assert_eq!(r.add("one-too-many"), None);
        assert_eq!(r.add("region"), Some(1));
        assert_eq!(r.len(), READS_MAX);
    }

    #[test]
    fn gathers_each_name_read() {
        let mut r = Reads::new("userId");
        r.add("region");
        r.add("bot");
        r.add("absent");
        r.add("abc");
        r.add("accountType");
        // Lengths collide (userId, region: 6; bot, and `abc` below: 3), and a
        // name of a listed length is not listed.
        // Names of one length get shapes of their own.
        assert_ne!(
            shape::<true>("userId", r.mix),
            shape::<true>("region", r.mix)
        );
        let entries = [
            ("region", "US"),
            ("plan", "pro"),
            ("userId", "u1"),
            ("abc", "x"),
            ("bot", "false"),
            ("absenT", "y"),
            ("accountTypo", "z"),
        ];
        let mut out = [None; 6];
        gather(&r, entries, |v, s| *s = Some(v), &mut out);
        let want = [Some("u1"), Some("US"), Some("false"), None, Some("x"), None];
        assert_eq!(out, want);
    }
}
