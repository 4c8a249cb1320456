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

use super::bytes::same_name;

/// At most this many distinct attributes of one experiment are gathered; the
/// conditions on any further attribute look theirs up on their own. A fixed
/// bound keeps a call's buffer on the stack.
pub const READS_MAX: usize = 8;

/// The distinct attribute names an experiment reads, the unit attribute first.
#[derive(Debug, Clone)]
pub struct Reads {
    names: Vec<Box<str>>,
    /// For each name length modulo 64: the position of the one name of that
    /// length, [`MANY`] when several share it, [`NONE`] when none has it. Most
    /// of a context's other attributes are passed over by this one load, and
    /// most of the names read are found without a search.
    by_len: [u8; 64],
}

const NONE: u8 = u8::MAX;
const MANY: u8 = u8::MAX - 1;

impl Default for Reads {
    fn default() -> Self {
        Reads {
            names: Vec::new(),
            by_len: [NONE; 64],
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
        self.names.push(name.into());
        let at = self.names.len() - 1;
        let slot = &mut self.by_len[name.len() % 64];
        *slot = match *slot {
            NONE => at as u8,
            _ => MANY,
        };
        Some(at)
    }

    /// The names, in position order.
    pub fn names(&self) -> &[Box<str>] {
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
    fn find(&self, name: &str) -> Option<usize> {
        match self.by_len[name.len() % 64] {
            NONE => None,
            MANY => self.names.iter().position(|n| same_name(n, name)),
            i => {
                let i = i as usize;
                self.names.get(i).filter(|n| same_name(n, name)).map(|_| i)
            }
        }
    }
}

/// Fills `out[i]` (`out` is as long as `reads` and all `None` on entry: the
/// caller's buffer is fresh, so it is not cleared again) with the value of the
/// first of `entries` named `reads.names()[i]`; `view` turns an entry's value
/// into what is stored (an `Attr`), only for the entries read. Stops at the
/// first entry after which every name is found. For a context whose names are
/// distinct this is what `Context::get` gives for each name.
#[inline]
pub fn gather<'a, V, T, I, F>(reads: &Reads, entries: I, view: F, out: &mut [Option<T>])
where
    I: IntoIterator<Item = (&'a str, V)>,
    F: Fn(V) -> T,
{
    let mut left = out.len();
    if left == 0 {
        return;
    }
    for (name, value) in entries {
        let Some(i) = reads.find(name) else {
            continue;
        };
        if let Some(slot @ None) = out.get_mut(i) {
            *slot = Some(view(value));
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
    fn gathers_the_first_entry_of_each_name() {
        let mut r = Reads::new("userId");
        r.add("region");
        r.add("bot");
        r.add("absent");
        r.add("abc");
        r.add("accountType");
        // Lengths collide (userId, region: 6; bot, and `abc` below: 3), a name
        // repeats, and a name of a listed length is not listed.
        let entries = [
            ("region", "US"),
            ("plan", "pro"),
            ("userId", "u1"),
            ("region", "EU"),
            ("abc", "x"),
            ("bot", "false"),
            ("absenT", "y"),
            ("accountTypo", "z"),
        ];
        let mut out = [None; 6];
        gather(&r, entries, |v| v, &mut out);
        let want = [Some("u1"), Some("US"), Some("false"), None, Some("x"), None];
        assert_eq!(out, want);
    }
}
