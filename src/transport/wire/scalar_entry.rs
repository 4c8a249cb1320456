//! The shape nearly every context attribute has on the wire, recognised
//! without the general walk of `super::context`.
//!
//! A `Struct` map entry holding a string, a boolean, a null or a number, as
//! every protobuf library writes it, is `0x0a n name 0x12 m value`, and the
//! value is one field: `0x1a k bytes`, `0x20 b`, `0x08 b` or `0x11 8-bytes`
//! (one-byte keys and lengths below 128). The general walk reads such an entry
//! through a loop over fields per message, a `Result` per step and an
//! out-of-line call per message: about 300 instructions per attribute
//! (callgrind, `decode_and_assign`, 10 attributes). Recognising the exact
//! shape takes a few comparisons. Only the structure is recognised here: the
//! caller checks the strings' UTF-8 and the limits in the general walk's order,
//! and anything else (nested values, repeated or unknown fields, longer
//! varints) goes to the general walk, so what is accepted and refused, and
//! with which error, does not change (`tests/wire_context.rs` compares the
//! two paths on mutated encodings).

/// A scalar value, its bytes not yet checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar<'a> {
    /// `string_value`: the bytes, UTF-8 unchecked.
    Str(&'a [u8]),
    /// `bool_value`.
    Bool(bool),
    /// `null_value` (any enum number, as the general walk reads it).
    Null,
    /// `number_value`, finiteness unchecked.
    Num(f64),
}

/// The name bytes (UTF-8 unchecked) and the value of a map entry of exactly
/// the common shape; `None` for any other entry.
#[inline(always)]
pub(super) fn scalar_entry(entry: &[u8]) -> Option<(&[u8], Scalar<'_>)> {
    let [0x0a, n, rest @ ..] = entry else {
        return None;
    };
    if *n >= 0x80 {
        return None;
    }
    let (name, rest) = rest.split_at_checked(*n as usize)?;
    let [0x12, m, value @ ..] = rest else {
        return None;
    };
    if *m >= 0x80 || *m as usize != value.len() {
        return None;
    }
    let scalar = match value {
        [0x1a, k, s @ ..] if *k < 0x80 && *k as usize == s.len() => Scalar::Str(s),
        [0x20, b] if *b < 0x80 => Scalar::Bool(*b != 0),
        [0x08, b] if *b < 0x80 => Scalar::Null,
        [0x11, x @ ..] => Scalar::Num(f64::from_le_bytes(<[u8; 8]>::try_from(x).ok()?)),
        _ => return None,
    };
    Some((name, scalar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_common_shapes_only() {
        let s = b"\x0a\x04plan\x12\x05\x1a\x03pro";
        assert_eq!(scalar_entry(s), Some((&b"plan"[..], Scalar::Str(b"pro"))));
        let b = b"\x0a\x03bot\x12\x02\x20\x01";
        assert_eq!(scalar_entry(b), Some((&b"bot"[..], Scalar::Bool(true))));
        let z = b"\x0a\x01z\x12\x02\x08\x00";
        assert_eq!(scalar_entry(z), Some((&b"z"[..], Scalar::Null)));
        let mut num = b"\x0a\x01n\x12\x09\x11".to_vec();
        num.extend(2.5f64.to_le_bytes());
        assert_eq!(scalar_entry(&num), Some((&b"n"[..], Scalar::Num(2.5))));
        for other in [
            &b""[..],
            b"\x0a\x04plan",                            // no value
            b"\x12\x05\x1a\x03pro\x0a\x04plan",         // value first
            b"\x0a\x04plan\x12\x05\x1a\x03pro\x18\x00", // a field after
            b"\x0a\x04plan\x12\x06\x1a\x03pro\x20",     // two value fields
            b"\x0a\x04plan\x12\x05\x1a\x04pro",         // string cut short
            b"\x0a\x03bot\x12\x02\x20\x81",             // two-byte varint
            b"\x0a\x03bot\x12\x02\x28\x01",             // not a scalar field
            b"\x0a\x05plan\x12\x05\x1a\x03pro",         // name runs over
            b"\x0a\x01n\x12\x05\x11\x00\x00\x00\x00",   // number cut short
        ] {
            assert_eq!(scalar_entry(other), None, "{other:?}");
        }
    }
}
