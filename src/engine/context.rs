//! Read-only access to an evaluation context, without converting it.
//!
//! The engine asks a context for one attribute at a time through [`Context`], so
//! the gRPC layer can evaluate straight from a `google.protobuf.Struct` and the CLI
//! from a parsed JSON object, with no copy and no allocation.

/// One attribute value as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attr<'a> {
    /// A string.
    Str(&'a str),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// Explicit null.
    Null,
    /// A list or object: present, but not a scalar.
    Other,
}

/// Something the engine can read attributes from.
pub trait Context {
    /// The attribute named `name`, if present.
    fn get(&self, name: &str) -> Option<Attr<'_>>;

    /// [`Context::get`] of every name in `reads`, into `out` (as long as
    /// `reads`, in its order, and all `None` on entry). Contexts that are scanned override this to find
    /// them all in one walk ([`gather`]); the answers are the same.
    #[inline]
    fn get_reads<'s>(&'s self, reads: &Reads, out: &mut [Option<Attr<'s>>]) {
        for (o, name) in out.iter_mut().zip(reads.names()) {
            *o = self.get(name);
        }
    }

    /// The whole context as a JSON object, for flagd-format targeting (JSONLogic
    /// reads nested values). Contexts that only answer `get` are empty here.
    fn json(&self) -> std::borrow::Cow<'_, serde_json::Map<String, serde_json::Value>> {
        std::borrow::Cow::Owned(serde_json::Map::new())
    }
}

pub use super::bytes::{same_bytes, same_name, Words};
use super::reads::{gather, Reads};

/// Contexts up to this many attributes are searched by a scan comparing lengths
/// first, which beats hashing the name (SipHash for JSON maps) or walking a B-tree
/// with full comparisons (protobuf `Struct`). Typical contexts have a handful.
pub const SCAN_MAX: usize = 16;

impl Context for serde_json::Map<String, serde_json::Value> {
    #[inline]
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        if self.len() <= SCAN_MAX {
            return self
                .iter()
                .find(|(k, _)| same_name(k, name))
                .map(|(_, v)| json_attr(v));
        }
        self.get(name).map(json_attr)
    }

    #[inline]
    fn get_reads<'s>(&'s self, reads: &Reads, out: &mut [Option<Attr<'s>>]) {
        if self.len() <= SCAN_MAX {
            return gather(reads, self.iter().map(|(k, v)| (&**k, v)), put_json, out);
        }
        for (o, name) in out.iter_mut().zip(reads.names()) {
            *o = self.get(&**name).map(json_attr);
        }
    }

    fn json(&self) -> std::borrow::Cow<'_, serde_json::Map<String, serde_json::Value>> {
        std::borrow::Cow::Borrowed(self)
    }
}

/// Views a JSON value as an [`Attr`].
pub fn json_attr(v: &serde_json::Value) -> Attr<'_> {
    use serde_json::Value;
    match v {
        Value::String(s) => Attr::Str(s),
        Value::Number(n) => n.as_f64().map(Attr::Num).unwrap_or(Attr::Other),
        Value::Bool(b) => Attr::Bool(*b),
        Value::Null => Attr::Null,
        Value::Array(_) | Value::Object(_) => Attr::Other,
    }
}

/// [`json_attr`] into `slot`, strings and booleans (the usual attributes)
/// each by a store of their own: converting first and storing the result
/// once made the compiler carry the parts one kind leaves undefined from one
/// attribute to the next, through the stack (callgrind, JSON context: six
/// instructions per attribute read).
#[inline(always)]
fn put_json<'v>(v: &'v serde_json::Value, slot: &mut Option<Attr<'v>>) {
    use serde_json::Value;
    match v {
        Value::String(s) => *slot = Some(Attr::Str(s)),
        Value::Bool(b) => *slot = Some(Attr::Bool(*b)),
        v => *slot = Some(json_attr(v)),
    }
}

impl<C: Context + ?Sized> Context for &C {
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        (**self).get(name)
    }

    #[inline]
    fn get_reads<'s>(&'s self, reads: &Reads, out: &mut [Option<Attr<'s>>]) {
        (**self).get_reads(reads, out)
    }

    fn json(&self) -> std::borrow::Cow<'_, serde_json::Map<String, serde_json::Value>> {
        (**self).json()
    }
}

/// A context with no attributes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Empty;

impl Context for Empty {
    fn get(&self, _: &str) -> Option<Attr<'_>> {
        None
    }
}

/// A stack buffer holding a unit id's bytes: strings as they are, numbers in their
/// canonical decimal form (integers without a fraction: `42`, not `42.0`), so
/// `"42"` and `42` are the same unit.
pub struct UnitBuf {
    int: itoa::Buffer,
    float: ryu::Buffer,
}

impl Default for UnitBuf {
    fn default() -> Self {
        UnitBuf {
            int: itoa::Buffer::new(),
            float: ryu::Buffer::new(),
        }
    }
}

impl UnitBuf {
    /// The bytes that identify the unit, or `None` when the attribute cannot
    /// identify one (absent, null, empty, boolean, list or object, non-finite).
    pub fn unit_bytes<'a>(&'a mut self, attr: Option<Attr<'a>>) -> Option<&'a [u8]> {
        match attr? {
            Attr::Str("") => None,
            Attr::Str(s) => Some(s.as_bytes()),
            Attr::Num(n) if !n.is_finite() => None,
            Attr::Num(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                Some(self.int.format(n as i64).as_bytes())
            }
            Attr::Num(n) => Some(self.float.format_finite(n).as_bytes()),
            Attr::Bool(_) | Attr::Null | Attr::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_name_the_same_unit() {
        let mut a = UnitBuf::default();
        assert_eq!(a.unit_bytes(Some(Attr::Num(42.0))), Some(&b"42"[..]));
        let mut b = UnitBuf::default();
        assert_eq!(b.unit_bytes(Some(Attr::Str("42"))), Some(&b"42"[..]));
        let mut c = UnitBuf::default();
        assert_eq!(c.unit_bytes(Some(Attr::Num(-1.5))), Some(&b"-1.5"[..]));
    }

    #[test]
    fn empty_and_non_scalar_units_are_missing() {
        let mut u = UnitBuf::default();
        assert_eq!(u.unit_bytes(None), None);
        assert_eq!(u.unit_bytes(Some(Attr::Str(""))), None);
        assert_eq!(u.unit_bytes(Some(Attr::Bool(true))), None);
        assert_eq!(u.unit_bytes(Some(Attr::Null)), None);
        assert_eq!(u.unit_bytes(Some(Attr::Other)), None);
        assert_eq!(u.unit_bytes(Some(Attr::Num(f64::NAN))), None);
    }
}
