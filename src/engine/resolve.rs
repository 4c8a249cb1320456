//! The one evaluation interface every transport calls: resolve a flag key for a
//! context into a value, a variant, a reason, metadata and the exposure decision.
//!
//! Transports (cohortd.v1, flagd v1/v2, OFREP) and the exposure pipeline see a
//! [`Resolution`], never a flag format. Each format is a variant of [`Flag`]
//! (looked up in [`Snapshot::flag`]) with its arm in [`resolve_flag`]: a cohortd
//! experiment, or a flagd-format flag, which resolves to [`Served::CallerDefault`]
//! when disabled or when its default variant is null, and is an exposure when
//! its targeting went through `fractional` (`crate::exposure::Subject::of`
//! decides).
//!
//! Resolving an experiment allocates nothing: the value and variant borrow the
//! snapshot, metadata is read on demand. A flagd flag with targeting sees the
//! context as JSON (a copy when the context is protobuf).

use crate::engine::flagd::{FlagdEvalError, FlagdReason, FractionalForm};
use crate::engine::{Assignment, Context, EvalError, EvalOptions, Reason as Detail};
use crate::snapshot::flagd::FlagdFlag;
use crate::snapshot::selector::Selector;
use crate::snapshot::{Experiment, Snapshot};

/// A flag of any format in a snapshot.
#[derive(Debug, Clone, Copy)]
pub enum Flag<'s> {
    /// A cohortd experiment (or plain flag written as one).
    Experiment(&'s Experiment),
    /// A flagd-format flag, with the `fractional` form the snapshot serves.
    Flagd(&'s FlagdFlag, FractionalForm),
}

impl<'s> Flag<'s> {
    /// The flag key.
    pub fn key(&self) -> &'s str {
        match *self {
            Flag::Experiment(e) => &e.key,
            Flag::Flagd(f, _) => f.key(),
        }
    }

    /// Whether evaluating this flag reads the context's JSON view
    /// ([`Context::json`]): a flagd-format flag with targeting. A transport
    /// that knows the flag before reading the context builds that view in the
    /// same pass.
    pub fn reads_json(&self) -> bool {
        matches!(self, Flag::Flagd(f, _) if f.targeting.is_some())
    }
}

impl Snapshot {
    /// Looks up a served flag of any format (cohortd drafts are not served).
    #[inline]
    pub fn flag(&self, key: &str) -> Result<Flag<'_>, EvalError> {
        match self.experiment(key) {
            Some(e) if !e.is_served() => Err(EvalError::Draft(key.to_owned())),
            Some(e) => Ok(Flag::Experiment(e)),
            None => match self.flagd().get(key) {
                Some(f) => Ok(Flag::Flagd(f, self.flagd_form())),
                None => Err(EvalError::NotFound(key.to_owned())),
            },
        }
    }

    /// Whether `sel` (a `Flagd-Selector`) selects `flag`: a flagd flag by its
    /// file or its `flagSetId`, an experiment by its file (it is in no flag set).
    pub fn selects(&self, flag: Flag<'_>, sel: &Selector) -> bool {
        match flag {
            Flag::Experiment(e) => sel.selects(&e.source, None),
            Flag::Flagd(f, _) => self.flagd().selects(f, sel),
        }
    }

    /// Every served flag of every format: experiments (by key), then flagd flags
    /// (by key). Bulk evaluation walks this.
    pub fn flags(&self) -> impl Iterator<Item = Flag<'_>> {
        let form = self.flagd_form();
        self.served().map(Flag::Experiment).chain(
            self.flagd()
                .flags()
                .iter()
                .map(move |f| Flag::Flagd(f, form)),
        )
    }
}

/// The value a resolution serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Served<'s> {
    /// A variant's value, borrowed from the snapshot.
    Value(&'s serde_json::Value),
    /// No value: the caller uses the default written in its code (a disabled
    /// flagd flag, or one whose default variant is null).
    CallerDefault,
}

/// Why a flag resolved as it did, in the OpenFeature/flagd vocabulary (the
/// `reason` flagd providers report). cohortd's finer reason for an experiment is
/// in [`Resolution::assignment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Pseudorandom but deterministic: enrolled by hash (or sticky).
    Split,
    /// Everyone gets this value (a plain flag, or a declared winner).
    Static,
    /// A targeting rule chose the variant.
    TargetingMatch,
    /// The default variant: outside targeting, holdout, layer or traffic.
    Default,
    /// The flag is disabled (stopped, paused or completed without a winner).
    Disabled,
    /// The flag could not be evaluated for this context.
    Error,
}

impl Reason {
    /// The flagd/OpenFeature reason string (`SPLIT`, `STATIC`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Split => "SPLIT",
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// Why no served flag has a key ([`EvalError`]): not found, or a draft.
pub type ResolveError = EvalError;

/// Why a found flag resolved with [`Reason::Error`]: the caller's default is
/// served, and each protocol reports the code in its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagError<'s> {
    /// The flag splits units but the context has no usable unit attribute (a
    /// non-empty string or a finite number) named `attribute`.
    TargetingKeyMissing {
        /// The attribute the flag hashes.
        attribute: &'s str,
    },
    /// A flagd flag's targeting returned a name that is not one of its variants
    /// (flagd: PARSE_ERROR).
    UnknownVariant,
    /// A flagd flag's targeting returned an object or array, which names no
    /// variant (flagd: PARSE_ERROR).
    NotAVariantName,
}

/// One flag resolved for one context.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'s> {
    /// The flag that was resolved.
    pub flag: Flag<'s>,
    /// The value served.
    pub value: Served<'s>,
    /// The variant served, if any.
    pub variant: Option<&'s str>,
    /// The OpenFeature reason.
    pub reason: Reason,
    /// Set exactly when `reason` is [`Reason::Error`].
    pub error: Option<FlagError<'s>>,
    /// For a cohortd experiment: the engine's assignment (variant, enrolment and
    /// the detailed reason); cohortd.v1 responses are built from it.
    pub assignment: Option<Assignment<'s>>,
    /// For a flagd flag: targeting went through `fractional` and named a
    /// variant, so this evaluation is an exposure.
    pub bucketed: bool,
    /// For a flagd flag: the variant is the entry `fractional` chose (exposure
    /// reason `split`, else `targeting_match`).
    pub split: bool,
}

impl<'s> Resolution<'s> {
    /// Flag metadata as `(key, value)` pairs, beside the config version the
    /// caller adds. For an experiment: what analysis needs to group by cohort and
    /// detect drift. For a flagd flag: exactly flagd's (flag-set metadata merged
    /// under the flag's own).
    pub fn metadata(&self) -> impl Iterator<Item = (&'s str, Meta<'s>)> {
        let a = self.assignment;
        let experiment = a.into_iter().flat_map(|a| {
            let e = a.experiment;
            [
                ("experimentStatus", Meta::Str(e.status.as_str())),
                ("epoch", Meta::Number(f64::from(e.epoch))),
                ("saltFingerprint", Meta::Str(&e.salt_fingerprint)),
                ("enrolled", Meta::Bool(a.enrolled)),
                ("cohortdReason", Meta::Str(a.reason.as_str())),
            ]
        });
        let flagd = match self.flag {
            Flag::Flagd(f, _) => Some(&f.metadata),
            Flag::Experiment(_) => None,
        };
        let flagd = flagd.into_iter().flatten().filter_map(|(k, v)| {
            let m = match v {
                serde_json::Value::String(s) => Meta::Str(s),
                serde_json::Value::Bool(b) => Meta::Bool(*b),
                serde_json::Value::Number(n) => Meta::Number(n.as_f64()?),
                _ => return None,
            };
            Some((k.as_str(), m))
        });
        experiment.chain(flagd)
    }

    /// The metadata key the caller puts the config version under: experiments
    /// have always said `configVersion`; flagd flags carry users' own keys, so
    /// cohortd's additions there start with `cohortd`.
    pub fn version_key(&self) -> &'static str {
        match self.flag {
            Flag::Experiment(_) => "configVersion",
            Flag::Flagd(..) => "cohortdConfigVersion",
        }
    }
}

/// One metadata value (flagd metadata is strings, numbers and booleans).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Meta<'s> {
    /// A string.
    Str(&'s str),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// Resolves `key` in `snap` for `ctx`: the entry point of every transport.
#[inline]
pub fn resolve<'s, C: Context + ?Sized>(
    snap: &'s Snapshot,
    key: &str,
    ctx: &C,
    opts: EvalOptions<'_>,
) -> Result<Resolution<'s>, ResolveError> {
    Ok(resolve_flag(snap.flag(key)?, ctx, opts))
}

/// Resolves one flag already looked up (bulk evaluation walks the snapshot).
#[inline]
pub fn resolve_flag<'s, C: Context + ?Sized>(
    flag: Flag<'s>,
    ctx: &C,
    opts: EvalOptions<'_>,
) -> Resolution<'s> {
    match flag {
        Flag::Experiment(e) => experiment(e, e.evaluate(ctx, opts, &mut ())),
        Flag::Flagd(f, form) => flagd(f, form, ctx, opts),
    }
}

/// Evaluates a flagd-format flag (see `engine::flagd` for flagd's rules). The
/// caller's default is served when the flag is disabled, when no default variant
/// is defined, and on a targeting error.
pub fn flagd<'s, C: Context + ?Sized>(
    f: &'s FlagdFlag,
    form: FractionalForm,
    ctx: &C,
    opts: EvalOptions<'_>,
) -> Resolution<'s> {
    let now = opts.now_unix_secs.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    let base = Resolution {
        flag: Flag::Flagd(f, form),
        value: Served::CallerDefault,
        variant: None,
        reason: Reason::Error,
        error: None,
        assignment: None,
        bucketed: false,
        split: false,
    };
    // Flags without targeting never read the context: no JSON view is built.
    let outcome = if f.targeting.is_none() {
        f.evaluate(&serde_json::Map::new(), now, form)
    } else {
        f.evaluate(&ctx.json(), now, form)
    };
    match outcome {
        Ok(o) => Resolution {
            value: o.value.map_or(Served::CallerDefault, Served::Value),
            variant: o.variant,
            reason: match o.reason {
                FlagdReason::Static => Reason::Static,
                FlagdReason::Default => Reason::Default,
                FlagdReason::TargetingMatch => Reason::TargetingMatch,
                FlagdReason::Disabled => Reason::Disabled,
            },
            bucketed: o.bucketed,
            split: o.split,
            ..base
        },
        Err(e) => Resolution {
            error: Some(match e {
                FlagdEvalError::UnknownVariant { .. } => FlagError::UnknownVariant,
                FlagdEvalError::NotAVariantName { .. } => FlagError::NotAVariantName,
            }),
            ..base
        },
    }
}

/// Maps an experiment's assignment onto the common vocabulary:
///
/// | cohortd outcome                                   | reason     |
/// |---------------------------------------------------|------------|
/// | enrolled by hash (or sticky)                      | `SPLIT`    |
/// | one live variant for everyone (a plain flag)      | `STATIC`   |
/// | completed/stopped/paused with a winner            | `STATIC`   |
/// | stopped/paused/completed, no winner: the default  | `DISABLED` |
/// | outside (targeting, holdout, layer, traffic)      | `DEFAULT`  |
/// | no usable unit attribute (and not a plain flag)   | `ERROR`    |
pub fn experiment<'s>(e: &'s Experiment, a: Assignment<'s>) -> Resolution<'s> {
    let (variant, reason) = match a.reason {
        Detail::Split | Detail::Sticky => match e.plain_flag_variant() {
            Some(v) => (v, Reason::Static),
            None => (a.variant, Reason::Split),
        },
        Detail::MissingUnit => match e.plain_flag_variant() {
            Some(v) => (v, Reason::Static),
            None => {
                return Resolution {
                    flag: Flag::Experiment(e),
                    value: Served::CallerDefault,
                    variant: None,
                    reason: Reason::Error,
                    error: Some(FlagError::TargetingKeyMissing {
                        attribute: &e.hash_key,
                    }),
                    assignment: Some(a),
                    bucketed: false,
                    split: false,
                }
            }
        },
        Detail::Winner => (a.variant, Reason::Static),
        Detail::Disabled => (a.variant, Reason::Disabled),
        Detail::TargetingMiss | Detail::Holdout | Detail::NotInLayer | Detail::NotInTraffic => {
            (a.variant, Reason::Default)
        }
    };
    Resolution {
        flag: Flag::Experiment(e),
        value: Served::Value(&variant.value),
        variant: Some(&variant.key),
        reason,
        error: None,
        assignment: Some(a),
        bucketed: false,
        split: false,
    }
}
