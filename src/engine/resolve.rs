//! The one evaluation interface every transport calls: resolve a flag key for a
//! context into a value, a variant, a reason, metadata and the exposure decision.
//!
//! Transports (cohortd.v1, flagd v1/v2, and later OFREP) and the exposure
//! pipeline see a [`Resolution`], never a flag format. A flag format joins by
//! adding a variant to [`Flag`] (looked up in [`Snapshot::flag`]) and an arm to
//! [`resolve_flag`]; a flagd-format flag would be `Flag::Flagd(&FlagdFlag)`,
//! resolving to [`Served::CallerDefault`] when disabled or when its default
//! variant is null, and deciding its exposure when `fractional` ran.
//!
//! Resolving an experiment allocates nothing: the value and variant borrow the
//! snapshot, metadata is read on demand.

use crate::engine::{Assignment, Context, EvalError, EvalOptions, Reason as Detail};
use crate::snapshot::{Experiment, Snapshot};

/// A flag of any format in a snapshot.
#[derive(Debug, Clone, Copy)]
pub enum Flag<'s> {
    /// A cohortd experiment (or plain flag written as one).
    Experiment(&'s Experiment),
}

impl Flag<'_> {
    /// The flag key.
    pub fn key(&self) -> &str {
        match self {
            Flag::Experiment(e) => &e.key,
        }
    }
}

impl Snapshot {
    /// Looks up a served flag of any format (cohortd drafts are not served).
    #[inline]
    pub fn flag(&self, key: &str) -> Result<Flag<'_>, EvalError> {
        match self.experiment(key) {
            None => Err(EvalError::NotFound(key.to_owned())),
            Some(e) if !e.is_served() => Err(EvalError::Draft(key.to_owned())),
            Some(e) => Ok(Flag::Experiment(e)),
        }
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
}

impl<'s> Resolution<'s> {
    /// The exposure decision: the assignment to record when this evaluation is
    /// an exposure (an enrolled unit), for [`crate::exposure::expose`].
    pub fn exposure(&self) -> Option<&Assignment<'s>> {
        self.assignment.as_ref().filter(|a| a.enrolled)
    }

    /// Flag metadata as `(key, value)` pairs, beside the config version the
    /// caller adds: what analysis needs to group by cohort and detect drift.
    pub fn metadata(&self) -> impl Iterator<Item = (&'static str, Meta<'s>)> {
        let a = self.assignment;
        a.into_iter().flat_map(|a| {
            let e = a.experiment;
            [
                ("experimentStatus", Meta::Str(e.status.as_str())),
                ("epoch", Meta::Number(f64::from(e.epoch))),
                ("saltFingerprint", Meta::Str(&e.salt_fingerprint)),
                ("enrolled", Meta::Bool(a.enrolled)),
                ("cohortdReason", Meta::Str(a.reason.as_str())),
            ]
        })
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
    }
}
