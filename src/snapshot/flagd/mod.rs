//! flagd-format flags, compiled: immutable, ready to evaluate.
//!
//! Built once per reload from a [`FlagdDocument`]: targeting is compiled to a
//! [`Logic`] tree, metadata is merged (flag-set metadata under the flag's own, the
//! flag wins, as flagd does) and the flag key is kept as a JSON value so that
//! `$flagd.flagKey` costs nothing per request. Evaluation lives in
//! `engine::flagd`.

pub mod logic;
pub mod set;

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::flagd::{FlagdDocument, FlagdState};
use crate::config::ConfigError;
pub use logic::{Logic, LogicError, Op, VarPath};
pub use set::FlagdSet;

/// One compiled flagd flag.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagdFlag {
    /// The flag key, as a JSON string (what `$flagd.flagKey` returns).
    pub key: Value,
    /// Served or not.
    pub state: FlagdState,
    /// Variant name -> value.
    pub variants: Map<String, Value>,
    /// The default variant, when there is one.
    pub default_variant: Option<String>,
    /// Compiled targeting; `None` means static (reason STATIC).
    pub targeting: Option<Logic>,
    /// Flag-set metadata overlaid with the flag's own.
    pub metadata: Map<String, Value>,
    /// Whether targeting contains `fractional` (such evaluations can be exposures).
    pub uses_fractional: bool,
}

impl FlagdFlag {
    /// The flag key.
    pub fn key(&self) -> &str {
        self.key.as_str().unwrap_or_default()
    }
}

/// Compiles every flag of a parsed document; errors name the file, flag and field.
pub fn compile_document(
    file: &Path,
    doc: &FlagdDocument,
) -> Result<Vec<FlagdFlag>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(doc.flags.len());
    for flag in &doc.flags {
        let targeting = match &flag.targeting {
            None => None,
            Some(t) => match Logic::compile(t) {
                Ok(l) => Some(l),
                Err(e) => {
                    errors.push(ConfigError::flag(file, &flag.key, e.path, e.message));
                    continue;
                }
            },
        };
        out.push(FlagdFlag {
            key: Value::String(flag.key.clone()),
            state: flag.state,
            variants: flag.variants.clone(),
            default_variant: flag.default_variant.clone(),
            uses_fractional: targeting.as_ref().is_some_and(|t| t.uses(Op::Fractional)),
            targeting,
            metadata: doc.merged_metadata(flag),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
