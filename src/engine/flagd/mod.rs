//! Evaluation of flagd-format flags: `(flag, context, now, form) -> outcome`.
//!
//! The decisions follow flagd's evaluators (Go `core/pkg/evaluator/json.go`, and
//! PyPI `openfeature-flagd-core` 2.0.0 for the in-process providers):
//! - DISABLED flag: the caller's default, no variant, reason DISABLED;
//! - no targeting (absent, null or `{}`): the default variant, reason STATIC;
//! - targeting yields null: the default variant, reason DEFAULT;
//! - targeting yields a variant name (booleans and numbers name the variant spelled
//!   like their JSON text): that variant, reason TARGETING_MATCH;
//! - anything else, or a name that is not a variant: an error (flagd: PARSE_ERROR);
//! - whenever the resolved variant is "the default" and there is none
//!   (`defaultVariant` null or absent): the caller's default, reason DEFAULT.

pub mod cbor;
pub mod fractional;
pub mod jsonlogic;
pub mod sem_ver;

use serde_json::{Map, Value};

use crate::config::flagd::FlagdState;
use crate::snapshot::flagd::FlagdFlag;
pub use fractional::FractionalForm;
use jsonlogic::{Env, State};

/// Why a flagd flag resolved as it did (OpenFeature reason names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagdReason {
    /// No targeting: the default variant.
    Static,
    /// Targeting yielded nothing, or there is no default variant.
    Default,
    /// Targeting named a variant.
    TargetingMatch,
    /// The flag is disabled.
    Disabled,
}

impl FlagdReason {
    /// The OpenFeature spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagdReason::Static => "STATIC",
            FlagdReason::Default => "DEFAULT",
            FlagdReason::TargetingMatch => "TARGETING_MATCH",
            FlagdReason::Disabled => "DISABLED",
        }
    }
}

/// A successful resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagdOutcome<'a> {
    /// The value; `None` means "the caller's default".
    pub value: Option<&'a Value>,
    /// The variant name, when one was resolved.
    pub variant: Option<&'a str>,
    /// Why.
    pub reason: FlagdReason,
    /// Flag-set metadata merged with the flag's own.
    pub metadata: &'a Map<String, Value>,
    /// Targeting went through `fractional` and it chose: this evaluation is an exposure.
    pub bucketed: bool,
    /// The variant is the entry `fractional` chose (exposure reason `split`);
    /// false when `fractional` ran but another branch named the variant
    /// (`targeting_match`). Implies `bucketed`.
    pub split: bool,
}

/// Why a flagd flag could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagdEvalError {
    /// Targeting named a variant the flag does not have.
    #[error("flag `{flag}`: targeting resolved to `{variant}`, which is not one of its variants")]
    UnknownVariant {
        /// The flag key.
        flag: String,
        /// What targeting returned.
        variant: String,
    },
    /// Targeting returned something that cannot name a variant (an object or array).
    #[error("flag `{flag}`: targeting returned {found}, not a variant name")]
    NotAVariantName {
        /// The flag key.
        flag: String,
        /// The JSON returned.
        found: String,
    },
}

impl FlagdEvalError {
    /// flagd's error code for this error.
    pub fn code(&self) -> &'static str {
        "PARSE_ERROR"
    }
}

impl FlagdFlag {
    /// Resolves this flag for `ctx` (the evaluation context, `targetingKey`
    /// included) at `now_unix` seconds, bucketing with `form`.
    pub fn evaluate<'a>(
        &'a self,
        ctx: &Map<String, Value>,
        now_unix: i64,
        form: FractionalForm,
    ) -> Result<FlagdOutcome<'a>, FlagdEvalError> {
        let outcome = |variant: Option<&'a str>, reason: FlagdReason, st: Option<&State>| {
            let (variant, value, reason) = match variant {
                Some(v) => (Some(v), self.variants.get(v), reason),
                None => (None, None, FlagdReason::Default),
            };
            FlagdOutcome {
                value,
                variant,
                reason,
                metadata: &self.metadata,
                bucketed: st.is_some_and(|s| s.bucketed),
                split: st.is_some_and(|s| s.bucketed && s.from_fractional),
            }
        };
        if self.state == FlagdState::Disabled {
            return Ok(FlagdOutcome {
                value: None,
                variant: None,
                reason: FlagdReason::Disabled,
                metadata: &self.metadata,
                bucketed: false,
                split: false,
            });
        }
        let default = self.default_variant.as_deref();
        let Some(targeting) = &self.targeting else {
            return Ok(outcome(default, FlagdReason::Static, None));
        };
        let env = Env {
            ctx,
            flag_key: &self.key,
            timestamp: Value::from(now_unix),
            form,
        };
        let mut st = State::default();
        let result = jsonlogic::eval(targeting, &env, &mut st);
        let name_buf;
        let name: &str = match &*result {
            Value::Null => return Ok(outcome(default, FlagdReason::Default, None)),
            Value::String(s) => s,
            Value::Bool(b) => {
                if *b {
                    "true"
                } else {
                    "false"
                }
            }
            Value::Number(n) => {
                name_buf = n.to_string();
                &name_buf
            }
            other => {
                return Err(FlagdEvalError::NotAVariantName {
                    flag: self.key().to_owned(),
                    found: other.to_string(),
                })
            }
        };
        match self.variants.get_key_value(name) {
            Some((k, _)) => Ok(outcome(
                Some(k.as_str()),
                FlagdReason::TargetingMatch,
                Some(&st),
            )),
            None => Err(FlagdEvalError::UnknownVariant {
                flag: self.key().to_owned(),
                variant: name.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::flagd::parse_flagd_value;
    use crate::snapshot::flagd::compile_document;

    /// (bucketed, split) for a targeting rule over variants a, b, x.
    fn provenance(targeting: Value) -> (bool, bool) {
        let doc = serde_json::json!({"flags": {"f": {
            "state": "ENABLED", "defaultVariant": "a",
            "variants": {"a": 1, "b": 2, "x": 3}, "targeting": targeting}}});
        let path = std::path::Path::new("t.json");
        let flags = compile_document(path, &parse_flagd_value(path, &doc).unwrap()).unwrap();
        let ctx = serde_json::json!({"targetingKey": "u1", "tier": "silver"});
        let o = flags[0]
            .evaluate(ctx.as_object().unwrap(), 0, FractionalForm::V3)
            .unwrap();
        (o.bucketed, o.split)
    }

    #[test]
    fn split_means_the_variant_is_fractionals_pick() {
        let f = serde_json::json!({"fractional": [["a", 1], ["b", 1]]});
        // Passed up unchanged: the top, an `if` branch, `or`, a `var` default.
        assert_eq!(provenance(f.clone()), (true, true));
        let gated = serde_json::json!({"if": [{"==": [{"var": "tier"}, "silver"]}, f, "x"]});
        assert_eq!(provenance(gated), (true, true));
        assert_eq!(provenance(serde_json::json!({"or": [f]})), (true, true));
        let dflt = serde_json::json!({"var": ["missing", f]});
        assert_eq!(provenance(dflt), (true, true));
        // A branch that only looked at its result chose: targeting_match.
        let looked = serde_json::json!({"if": [{"in": [f, ["a", "b"]]}, "x", "a"]});
        assert_eq!(provenance(looked), (true, false));
        let rebuilt = serde_json::json!({"cat": [f]});
        assert_eq!(provenance(rebuilt), (true, false));
        // fractional never ran: no exposure at all.
        let before = serde_json::json!({"if": [{"==": [{"var": "tier"}, "silver"]}, "x", f]});
        assert_eq!(provenance(before), (false, false));
    }
}
