//! flagd selectors: which flags one request may see.
//!
//! flagd reads a selector from the `Flagd-Selector` header on its evaluation
//! services (RPC v1/v2, OFREP) and sync service (docs/reference/selector-syntax.md
//! in open-feature/flagd): `flagSetId=ID` picks the flags whose (merged)
//! metadata says `flagSetId: ID` (`flagSetId=` picks those in no named set),
//! `source=S` or a bare `S` picks the flags of one source. cohortd's sources are
//! the files of the config directory, named by their path, their file name, or
//! a trailing part of their path (`file:` prefix allowed). cohortd experiments
//! belong to no flag set: `flagSetId=` and their file select them.

use std::path::Path;

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `flagSetId=ID` (empty: flags in no named set).
    FlagSet(String),
    /// `source=S`, or a bare `S`: the flags of one file.
    Source(String),
}

impl Selector {
    /// Parses a selector; `None` for an empty one (no selection). An unknown
    /// key is read as a bare source, as flagd reads selectors without `=`.
    pub fn parse(s: &str) -> Option<Selector> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.split_once('=') {
            Some((k, v)) if k.trim() == "flagSetId" => Selector::FlagSet(v.trim().to_owned()),
            Some((k, v)) if k.trim() == "source" => Selector::Source(v.trim().to_owned()),
            _ => Selector::Source(s.to_owned()),
        })
    }

    /// Whether a flag defined in `file`, in flag set `set` (its `flagSetId`
    /// metadata), is selected.
    pub fn selects(&self, file: &Path, set: Option<&str>) -> bool {
        match self {
            Selector::FlagSet(id) => set.unwrap_or("") == id,
            Selector::Source(_) => self.names(file),
        }
    }

    /// Whether this is a source selector naming `file`.
    pub fn names(&self, file: &Path) -> bool {
        let Selector::Source(s) = self else {
            return false;
        };
        let s = s.strip_prefix("file:").unwrap_or(s);
        !s.is_empty()
            && (file.as_os_str() == s
                || file.file_name().is_some_and(|n| n == s)
                || file.ends_with(s))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::FlagSet(id) => write!(f, "flagSetId={id}"),
            Selector::Source(s) => write!(f, "source={s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flagd_syntax_and_matches_files_and_sets() {
        assert_eq!(Selector::parse("  "), None);
        let set = Selector::parse("flagSetId=web").unwrap();
        assert_eq!(set, Selector::FlagSet("web".into()));
        assert!(set.selects(Path::new("/x/a.json"), Some("web")));
        assert!(!set.selects(Path::new("/x/a.json"), None));
        let none = Selector::parse("flagSetId=").unwrap();
        assert!(none.selects(Path::new("a"), None));
        assert!(!none.selects(Path::new("a"), Some("web")));
        let file = Path::new("/etc/cohortd/config/flags.json");
        for s in [
            "source=flags.json",
            "flags.json",
            "config/flags.json",
            "file:/etc/cohortd/config/flags.json",
        ] {
            assert!(Selector::parse(s).unwrap().selects(file, None), "{s}");
        }
        assert!(!Selector::parse("other.json").unwrap().selects(file, None));
        assert!(!Selector::parse("ags.json").unwrap().selects(file, None));
    }
}
