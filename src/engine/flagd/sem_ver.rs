//! flagd's `sem_ver`, `starts_with` and `ends_with` operators.
//!
//! Versions are read as flagd's providers read them (openfeature-flagd-core
//! `normalize_version`): a leading `v`/`V` is dropped, partial versions are padded
//! (`1` -> `1.0.0`, `1.2` -> `1.2.0`, keeping any `-pre`/`+build` suffix), then
//! parsed as SemVer 2.0. Comparison is SemVer precedence, which ignores build
//! metadata. `^` compares the major version, `~` major and minor. Anything
//! unparsable makes the operator yield null, as in flagd.

use std::cmp::Ordering;

use serde_json::Value;

/// Parses a version the way flagd does.
pub fn parse_version(v: &Value) -> Option<semver::Version> {
    let owned;
    let s: &str = match v {
        Value::String(s) => s,
        Value::Number(n) => {
            owned = n.to_string();
            &owned
        }
        _ => return None,
    };
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let numeric_end = s.find(['-', '+']).unwrap_or(s.len());
    let numeric = &s[..numeric_end];
    let dots = numeric.matches('.').count();
    if dots >= 2 {
        return semver::Version::parse(s).ok();
    }
    let mut padded = String::with_capacity(s.len() + 4);
    padded.push_str(numeric);
    for _ in dots..2 {
        padded.push_str(".0");
    }
    padded.push_str(&s[numeric_end..]);
    semver::Version::parse(&padded).ok()
}

/// `sem_ver(a, op, b)`: `None` when an argument is not a version or `op` unknown.
pub fn sem_ver(a: &Value, op: &Value, b: &Value) -> Option<bool> {
    let op = op.as_str()?;
    let (a, b) = (parse_version(a)?, parse_version(b)?);
    let ord = a.cmp_precedence(&b);
    Some(match op {
        "=" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        "^" => a.major == b.major,
        "~" => a.major == b.major && a.minor == b.minor,
        _ => return None,
    })
}

/// `starts_with` / `ends_with`: both arguments must be strings, else null.
pub fn string_affix(a: &Value, b: &Value, suffix: bool) -> Option<bool> {
    let (Value::String(a), Value::String(b)) = (a, b) else {
        return None;
    };
    Some(if suffix {
        a.ends_with(b.as_str())
    } else {
        a.starts_with(b.as_str())
    })
}
