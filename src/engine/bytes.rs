//! Byte equality for the short strings evaluation compares: attribute names
//! while scanning a context, targeting values while testing them.

/// String equality that rejects most mismatches of a scan without calling
/// `memcmp`: lengths first, then the first byte, then [`same_bytes`].
#[inline(always)]
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.as_bytes().first() == b.as_bytes().first()
        && same_bytes(a.as_bytes(), b.as_bytes())
}

/// Byte equality compared inline, without a call to `memcmp`: attribute names
/// and targeting values are short, and a `memcmp` call costs more (about 30
/// instructions, profiled) than comparing them in registers. Up to 16 bytes take
/// two overlapping loads per side, up to 32 bytes four (experiment keys are
/// often 17 to 32 bytes long); longer strings fall back to `==`.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        17..=32 => {
            (word8(a, 0) ^ word8(b, 0))
                | (word8(a, 8) ^ word8(b, 8))
                | (word8(a, n - 16) ^ word8(b, n - 16))
                | (word8(a, n - 8) ^ word8(b, n - 8))
                == 0
        }
        _ => a == b,
    }
}

/// A string of up to 16 bytes split at compile time into the words
/// [`same_bytes`] would load from it, so comparing a string with it loads
/// only the other side: the words sit inline where the comparison is made
/// (in a read list, in an equality condition), not behind a pointer to the
/// string's bytes. Longer strings keep only their length class ([`Words::LONG`])
/// and are compared with [`same_bytes`] against their full text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    len: usize,
    first: u64,
    last: u64,
}

impl Words {
    /// The `len` of a string over 16 bytes: no string has it, so the
    /// comparison goes to the full text.
    const LONG: usize = usize::MAX;
    /// The `len` of a slot holding no string: nothing matches it.
    pub const NOTHING: Words = Words {
        len: usize::MAX - 1,
        first: 0,
        last: 0,
    };

    /// The words of `s`.
    pub fn new(s: &[u8]) -> Words {
        if s.len() > 16 {
            return Words {
                len: Self::LONG,
                first: 0,
                last: 0,
            };
        }
        let (first, last) = split(s);
        Words {
            len: s.len(),
            first,
            last,
        }
    }

    /// Whether `s` equals the string these words were made from (`full` gives
    /// it; called only when that string is over 16 bytes).
    #[inline(always)]
    pub fn same<'f>(&self, s: &[u8], full: impl FnOnce() -> &'f [u8]) -> bool {
        if s.len() == self.len {
            return split(s) == (self.first, self.last);
        }
        self.len == Self::LONG && same_bytes(s, full())
    }
}

/// The words [`same_bytes`] compares of a string of at most 16 bytes (two
/// overlapping loads; the three bytes it reads of a shorter one).
///
/// The length classes are tested longest first: attribute names are mostly 4
/// to 16 bytes long, so a name's class is found in one or two comparisons
/// instead of three (callgrind, wire context enrolled: 940 to 914 instructions
/// per assignment; a `match` on the ranges tested the short classes first).
#[inline(always)]
fn split(s: &[u8]) -> (u64, u64) {
    let n = s.len();
    if n >= 8 {
        (word8(s, 0), word8(s, n - 8))
    } else if n >= 4 {
        (u64::from(word4(s, 0)), u64::from(word4(s, n - 4)))
    } else if n > 0 {
        (
            u64::from(s[0]) | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

/// The 8 bytes of `s` from `at`, little-endian (0 if `s` is too short, which
/// the callers' length checks rule out).
#[inline(always)]
fn word8(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// The 4 bytes of `s` from `at`, little-endian (as [`word8`]).
#[inline(always)]
fn word4(s: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or([0; 4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abd",
            "xbc",
            "region",
            "regioN",
            "Region",
            "country",
            "countrz",
            "userId12",
            "userId13",
            "targetingKey",
            "targetingKez",
            "accountType-long",
            "accountType-lonG",
            "appVersion-and-then-some",
            "appVersion-and-then-somf",
            "exp-checkout-flow-v3",
            "exp-checkout-flow-v4",
            "fxp-checkout-flow-v3",
            "exp-checkoutXflow-v3",
            "exp-checkout-flow-v3-and-a-longer",
            "exp-checkout-flow-v3-and-a-longes",
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdeF",
            "0123456789abcdeX0123456789abcdef",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_bytes(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
                assert_eq!(same_name(a, b), a == b, "{a} {b}");
                let w = Words::new(a.as_bytes());
                assert_eq!(w.same(b.as_bytes(), || a.as_bytes()), a == b, "{a} {b}");
                assert!(!Words::NOTHING.same(b.as_bytes(), || a.as_bytes()), "{b}");
            }
        }
    }
}
