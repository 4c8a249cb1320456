//! Canonical CBOR (RFC 8949) of a JSON value, exactly as flagd's v3 `fractional`
//! hashes it.
//!
//! The reference is PyPI `openfeature-flagd-core` 2.0.0, which calls
//! `cbor2.dumps(value, canonical=True)` after turning integral floats into
//! integers. That pins the rules implemented here:
//! - integers in the shortest head (major 0 / 1);
//! - floats in the shortest of half, single or double precision that holds the value
//!   exactly (NaN and infinities cannot come from JSON);
//! - text strings (major 3), definite-length arrays (major 4);
//! - maps (major 5) with keys ordered by the length of their encoding, then bytewise.
//!
//! No crate was used: ciborium writes map entries in insertion order (not
//! canonical), and the shorthand case (`[flagKey, targetingKey]`) is three heads
//! and two strings, cheaper to write directly into a reused buffer.

use serde_json::{Number, Value};

/// Appends a CBOR head (major type + argument) in its shortest form.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Appends a text string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends an integer (the full i64/u64 range; bignums never arise from JSON).
pub fn write_int(out: &mut Vec<u8>, n: i128) {
    if n >= 0 {
        write_head(out, 0, n as u64);
    } else {
        write_head(out, 1, (-1 - n) as u64);
    }
}

/// Appends a float in the shortest exact width.
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    let single = f as f32;
    if f64::from(single) != f {
        out.push(0xfb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
        return;
    }
    if let Some(half) = f32_to_f16_exact(single) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else {
        out.push(0xfa);
        out.extend_from_slice(&single.to_bits().to_be_bytes());
    }
}

/// The IEEE half-precision bits of `f` when `f` is exactly representable (finite).
fn f32_to_f16_exact(f: f32) -> Option<u16> {
    let bits = f.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0 && man == 0 {
        return Some(sign); // +-0
    }
    if exp == 0xff {
        return None; // not produced from JSON
    }
    if exp == 0 {
        return None; // f32 subnormals are far below half's range
    }
    let e = exp - 127;
    if (-14..=15).contains(&e) {
        // Normal half: 10 mantissa bits, the low 13 of the f32 mantissa must be zero.
        if man & 0x1fff != 0 {
            return None;
        }
        return Some(sign | (((e + 15) as u16) << 10) | (man >> 13) as u16);
    }
    if (-24..-14).contains(&e) {
        // Subnormal half: value = m * 2^-24 with m < 1024.
        let full = man | 0x80_0000; // 24-bit significand, value = full * 2^(e-23)
        let shift = (-14 - e) + 13; // bits dropped going to m
        if full & ((1u32 << shift) - 1) != 0 {
            return None;
        }
        return Some(sign | (full >> shift) as u16);
    }
    None
}

/// The number as flagd-core normalises it: integral floats in [-2^63, 2^64 - 1]
/// become integers.
fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(i) = n.as_i64() {
        write_int(out, i128::from(i));
    } else if let Some(u) = n.as_u64() {
        write_int(out, i128::from(u));
    } else if let Some(f) = n.as_f64() {
        // 2^64 - 1 is not a float; the largest float below 2^64 is what the range admits.
        if f.fract() == 0.0 && (-9.223_372_036_854_776e18..1.844_674_407_370_955_2e19).contains(&f)
        {
            write_int(out, f as i128);
        } else {
            write_float(out, f);
        }
    }
}

/// Appends the canonical encoding of a JSON value (numbers normalised).
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            write_head(out, 4, a.len() as u64);
            for x in a {
                write_value(out, x);
            }
        }
        Value::Object(m) => {
            write_head(out, 5, m.len() as u64);
            let mut entries: Vec<(Vec<u8>, &Value)> = m
                .iter()
                .map(|(k, v)| {
                    let mut key = Vec::with_capacity(k.len() + 9);
                    write_str(&mut key, k);
                    (key, v)
                })
                .collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            for (k, v) in entries {
                out.extend_from_slice(&k);
                write_value(out, v);
            }
        }
    }
}

/// The canonical encoding of `v`, as a new buffer.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, v);
    out
}
