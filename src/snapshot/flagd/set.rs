//! Every flagd-format flag of a config directory, compiled together: the flags
//! (looked up by key), which file each came from (the sync service's `selector`),
//! and the flag set as flagd's in-process providers read it.
//!
//! A key may be defined once across the directory: two flagd files, or a flagd
//! file and a cohortd experiment, defining the same key is an error naming both
//! places.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{compile_document, FlagdFlag};
use crate::config::flagd::{FlagdDocument, FlagdState};
use crate::config::ConfigError;
use crate::snapshot::selector::Selector;

/// The compiled flagd flags of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct FlagdSet {
    flags: Vec<FlagdFlag>,
    index: HashMap<Box<str>, usize, foldhash::fast::FixedState>,
    /// Per flag (same order as `flags`): its definition as sent to in-process
    /// providers (`$ref` resolved, flag-set metadata merged into the flag's).
    defs: Vec<Value>,
    /// Per flag: the index in `sources` of the file that defines it.
    source_of: Vec<usize>,
    /// The files, by path.
    sources: Vec<PathBuf>,
}

impl FlagdSet {
    /// Compiles the flagd documents of `docs` (file, document), checking keys
    /// against each other and against `taken` (keys already defined elsewhere,
    /// with the file defining them).
    pub fn compile<'a>(
        docs: impl IntoIterator<Item = (&'a Path, &'a FlagdDocument)>,
        taken: impl Fn(&str) -> Option<&'a Path>,
    ) -> Result<FlagdSet, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut set = FlagdSet::default();
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut all: Vec<(FlagdFlag, Value, usize)> = Vec::new();
        for (file, doc) in docs {
            let src = set.sources.len();
            set.sources.push(file.to_owned());
            let compiled = match compile_document(file, doc) {
                Ok(c) => c,
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            };
            for (flag, cfg) in compiled.into_iter().zip(&doc.flags) {
                if let Some(other) = taken(&cfg.key) {
                    errors.push(ConfigError::flag(
                        file,
                        &cfg.key,
                        "",
                        format!(
                            "flag key defined twice: also a cohortd experiment in {}",
                            other.display()
                        ),
                    ));
                    continue;
                }
                if let Some(&prev) = owner.get(&cfg.key) {
                    errors.push(ConfigError::flag(
                        file,
                        &cfg.key,
                        "",
                        format!(
                            "flag key defined twice: also a flagd flag in {}",
                            set.sources[prev].display()
                        ),
                    ));
                    continue;
                }
                owner.insert(cfg.key.clone(), src);
                let mut def = Map::new();
                let state = match cfg.state {
                    FlagdState::Enabled => "ENABLED",
                    FlagdState::Disabled => "DISABLED",
                };
                def.insert("state".into(), state.into());
                def.insert("variants".into(), Value::Object(cfg.variants.clone()));
                def.insert(
                    "defaultVariant".into(),
                    cfg.default_variant
                        .clone()
                        .map_or(Value::Null, Value::String),
                );
                if let Some(t) = &cfg.targeting {
                    def.insert("targeting".into(), t.clone());
                }
                if !flag.metadata.is_empty() {
                    def.insert("metadata".into(), Value::Object(flag.metadata.clone()));
                }
                all.push((flag, Value::Object(def), src));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        all.sort_by(|a, b| a.0.key().cmp(b.0.key()));
        for (i, (flag, def, src)) in all.into_iter().enumerate() {
            set.index.insert(flag.key().into(), i);
            set.flags.push(flag);
            set.defs.push(def);
            set.source_of.push(src);
        }
        Ok(set)
    }

    /// The flag with this key.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&FlagdFlag> {
        self.index.get(key).map(|&i| &self.flags[i])
    }

    /// Every flag, sorted by key.
    pub fn flags(&self) -> &[FlagdFlag] {
        &self.flags
    }

    /// Whether no flagd flag is defined.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The files that hold flagd documents, in load order.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The file that defines the flag with this key.
    pub fn source_of(&self, key: &str) -> Option<&Path> {
        self.index
            .get(key)
            .map(|&i| self.sources[self.source_of[i]].as_path())
    }

    /// Whether the `i`-th flag is one `sel` selects.
    fn selected(&self, i: usize, sel: &Selector) -> bool {
        let set = self.flags[i]
            .metadata
            .get("flagSetId")
            .and_then(Value::as_str);
        sel.selects(&self.sources[self.source_of[i]], set)
    }

    /// Whether the flag `f` (of this set) is one `sel` selects.
    pub fn selects(&self, f: &FlagdFlag, sel: &Selector) -> bool {
        self.index
            .get(f.key())
            .is_some_and(|&i| self.selected(i, sel))
    }

    /// The flag-definition document of the whole set, or of the flags a
    /// selector picks ([`Selector`]), as flagd's sync service sends it:
    /// `{"flags": {...}}`. `None` when a source selector names no flagd file
    /// of the directory (a flag-set selector naming no set selects nothing).
    pub fn document(&self, selector: Option<&str>) -> Option<Value> {
        let sel = selector.and_then(Selector::parse);
        if let Some(s @ Selector::Source(_)) = &sel {
            if !self.sources.iter().any(|p| s.names(p)) {
                return None;
            }
        }
        let mut flags = Map::new();
        for (i, flag) in self.flags.iter().enumerate() {
            if sel.as_ref().is_none_or(|s| self.selected(i, s)) {
                flags.insert(flag.key().to_owned(), self.defs[i].clone());
            }
        }
        let mut doc = Map::new();
        doc.insert("flags".into(), Value::Object(flags));
        Some(Value::Object(doc))
    }
}
