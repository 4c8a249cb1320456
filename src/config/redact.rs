//! Keeping file contents out of error messages.
//!
//! Config errors end up in logs and in `/readyz`, which are read by more people
//! than the config files are. A file pulled in through a symlink may not be a
//! config at all (a secret mounted next to it), and serde quotes the offending
//! value (`unknown variant `SECRET_TOKEN_abc``). Errors name the file and the
//! field path; a quoted value is kept only up to [`MAX_QUOTED_CHARS`] (enough to
//! spot a typo such as `runing`), and every free-text part of the error is capped.

use super::ConfigError;

/// Longest quoted value kept in a message, in characters.
pub const MAX_QUOTED_CHARS: usize = 40;
/// Longest experiment key kept in an error, in characters.
const MAX_LOCATOR_CHARS: usize = 120;
/// Longest field path kept, in characters: real paths are short
/// (`variants[1].weight`); a long one is a value from the file used as a key.
const MAX_FIELD_CHARS: usize = 60;
/// Longest message kept, in characters (serde lists every expected variant).
const MAX_MESSAGE_CHARS: usize = 400;

/// A UTF-8 byte order mark, which some editors write at the start of a file.
pub const BOM: &str = "\u{feff}";

/// Caps what an error repeats from the file.
pub fn redact(mut e: ConfigError) -> ConfigError {
    e.message = cap_quoted(&e.message);
    e.experiment = e.experiment.map(|k| cap(&k, MAX_LOCATOR_CHARS));
    e.field = e.field.map(|f| cap(&cap_quoted(&f), MAX_FIELD_CHARS));
    e
}

/// Shortens every `` `...` `` and `"..."` segment longer than [`MAX_QUOTED_CHARS`]
/// and the whole message to [`MAX_MESSAGE_CHARS`].
pub fn cap_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MAX_MESSAGE_CHARS + 8));
    let mut rest = msg;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let close = closing(after, quote);
        let (inner, tail) = match close {
            Some(c) => (&after[..c], &after[c..]),
            None => (after, ""),
        };
        out.push_str(&cap(inner, MAX_QUOTED_CHARS));
        rest = tail;
        if let Some(stripped) = rest.strip_prefix(quote) {
            out.push(quote);
            rest = stripped;
        }
    }
    out.push_str(rest);
    cap(&out, MAX_MESSAGE_CHARS)
}

/// The byte offset of the quote closing a segment (skipping `\"` escapes).
fn closing(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// The first `max` characters of `s`, with `…(N chars)` when something was cut.
fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…({} chars)", &s[..end], s.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_cut_short_ones_kept() {
        let long = "S".repeat(100);
        let m = cap_quoted(&format!("unknown variant `{long}`, expected `running`"));
        assert!(!m.contains(&long));
        assert!(m.contains(&"S".repeat(40)));
        assert!(m.ends_with("expected `running`"), "{m}");
        assert_eq!(
            cap_quoted("invalid type: string \"runing\""),
            "invalid type: string \"runing\""
        );
        let esc = format!("string \"a\\\"{long}\" x");
        assert!(!cap_quoted(&esc).contains(&long));
        assert!(!cap_quoted(&format!("unclosed `{long}")).contains(&long));
        assert!(cap_quoted(&"é".repeat(1000)).chars().count() < 450);
    }
}
