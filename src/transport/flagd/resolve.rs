//! One flag resolution in flagd's terms, shared by the v1 and v2 services.
//!
//! A flag key is an experiment key; the assigned variant's key is the flagd
//! `variant` and its value the flagd `value`, type-checked against the Resolve
//! method called. Reasons follow the OpenFeature vocabulary, mapped once for
//! every transport in [`crate::engine::resolve`].
//!
//! Errors travel as gRPC status codes, which is how flagd conveys them and how
//! every flagd provider maps them: `NOT_FOUND` (FLAG_NOT_FOUND), `INVALID_ARGUMENT`
//! (TYPE_MISMATCH), and `FAILED_PRECONDITION` for a missing unit attribute (the
//! message starts with `TARGETING_KEY_MISSING`) or a request over the limits
//! (`INVALID_CONTEXT`); providers report those as GENERAL since flagd defines no
//! status code for them.
//!
//! Over 500 lines because it is one idea, a resolution in flagd's terms, for
//! every caller (v1, v2, OFREP, bulk): the value conversions, reasons and error
//! codes must stay identical across them, which one file guarantees.

use std::sync::Arc;

use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tonic::{Code, Status};

use super::wire::{ContextError, WireContext};
use crate::engine::resolve::{
    resolve_flag, Flag, FlagError, Meta, Reason, Resolution as ResolutionOf, Served,
};
use crate::engine::{Context, EvalError, EvalOptions};
use crate::exposure::{expose, ExposureSink, Source, Subject};
use crate::reload::Store;
use crate::snapshot::selector::Selector;
use crate::transport::convert::json_object_to_struct;
use crate::transport::limits::{LimitError, Limits};
use crate::Snapshot;

/// The flagd (OpenFeature) reason strings cohortd sends.
pub mod reason {
    /// Enrolled by hash: pseudorandom but deterministic assignment.
    pub const SPLIT: &str = "SPLIT";
    /// Everyone gets the same value (a plain flag, or a declared winner).
    pub const STATIC: &str = "STATIC";
    /// Outside the experiment: the default variant.
    pub const DEFAULT: &str = "DEFAULT";
    /// Stopped, paused or completed without a winner: the default variant.
    pub const DISABLED: &str = "DISABLED";
}

/// The value type a Resolve method asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `ResolveBoolean`.
    Boolean,
    /// `ResolveString`.
    String,
    /// `ResolveInt`: integral numbers within `i64`.
    Integer,
    /// `ResolveFloat`: any number.
    Float,
    /// `ResolveObject`: JSON objects.
    Object,
}

impl ValueType {
    /// The name used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Boolean => "boolean",
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Float => "float",
            ValueType::Object => "object",
        }
    }
}

/// A variant value converted to the type a Resolve method returns.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// An object.
    Object(Struct),
}

/// A successful resolution, ready to put in any Resolve response.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The variant key; `None` when the caller's default is served (a disabled
    /// flagd flag, or one without a default variant).
    pub variant: Option<String>,
    /// The variant's value, of the requested type; `None` with `variant`.
    pub value: Option<FlagValue>,
    /// The flagd reason (see [`reason`]).
    pub reason: &'static str,
    /// Flag metadata: config version, experiment status, epoch, salt fingerprint.
    pub metadata: Struct,
}

/// A successful single-flag resolution as borrowed from the snapshot, before
/// it is put in a response (see [`super::encode`]).
pub struct Resolved<'a> {
    /// The variant's value (of the requested type) and key; `None` when the
    /// caller's default is served.
    pub value: Option<(&'a serde_json::Value, &'a str)>,
    /// The flagd reason (see [`reason`]).
    pub reason: &'static str,
    version: &'a str,
    r: &'a ResolutionOf<'a>,
}

impl<'a> Resolved<'a> {
    /// The flag metadata, in insertion order: the config version first, then
    /// what the resolution reports (a later duplicate key wins).
    pub fn metadata(&self) -> impl Iterator<Item = (&'a str, Meta<'a>)> + '_ {
        std::iter::once((self.r.version_key(), Meta::Str(self.version))).chain(self.r.metadata())
    }

    /// [`Resolved::metadata`] as a `Struct`.
    fn metadata_struct(&self) -> Struct {
        metadata(self.version, self.r)
    }
}

/// Why a flag could not be resolved; each maps to the gRPC code flagd uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The sidecar has not loaded a valid config yet.
    #[error("PROVIDER_NOT_READY: cohortd has not loaded a configuration yet")]
    NotReady,
    /// No experiment or flag has this key.
    #[error("FLAG_NOT_FOUND: flag `{0}` is not in the configuration{1}")]
    NotFound(String, String),
    /// The experiment is a draft, which is never served.
    #[error("FLAG_NOT_FOUND: flag `{0}` is a draft and is not served")]
    Draft(String),
    /// The served value is not of the requested type.
    #[error(
        "TYPE_MISMATCH: flag `{flag}` variant `{variant}` has a {found} value, \
         not the {wanted} that was asked for"
    )]
    TypeMismatch {
        /// Flag key.
        flag: String,
        /// The variant that would have been served.
        variant: String,
        /// The requested type's name.
        wanted: &'static str,
        /// The value's JSON type.
        found: &'static str,
    },
    /// The request breaks a request limit or carries a malformed context.
    #[error("INVALID_CONTEXT: {0}")]
    Rejected(#[from] LimitError),
    /// A flagd flag's targeting returned no variant of the flag (flagd: GENERAL).
    #[error("GENERAL: flag `{flag}`: targeting returned {what}, which is not one of its variants")]
    Targeting {
        /// Flag key.
        flag: String,
        /// What targeting returned, described.
        what: &'static str,
    },
    /// The context lacks the attribute that identifies the unit.
    #[error(
        "TARGETING_KEY_MISSING: flag `{flag}` identifies units by `{attribute}`, \
         which the evaluation context does not carry (set the targeting key)"
    )]
    TargetingKeyMissing {
        /// Flag key.
        flag: String,
        /// The unit attribute the experiment hashes on.
        attribute: String,
    },
}

impl ResolveError {
    /// The gRPC status code flagd uses for this error (providers map it back).
    pub fn code(&self) -> Code {
        match self {
            ResolveError::NotReady => Code::Unavailable,
            ResolveError::NotFound(..) | ResolveError::Draft(_) => Code::NotFound,
            ResolveError::TypeMismatch { .. } => Code::InvalidArgument,
            // flagd: GeneralErrorCode, sent as Unknown (providers report GENERAL).
            ResolveError::Targeting { .. } => Code::Unknown,
            // Not INVALID_ARGUMENT: providers would report that as TYPE_MISMATCH.
            ResolveError::TargetingKeyMissing { .. } | ResolveError::Rejected(_) => {
                Code::FailedPrecondition
            }
        }
    }
}

impl From<ResolveError> for Status {
    fn from(e: ResolveError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

/// Resolves flags against the store and records exposures.
#[derive(Debug, Clone)]
pub struct Resolver {
    store: Arc<Store>,
    sink: Arc<dyn ExposureSink>,
    limits: Limits,
}

impl Resolver {
    /// A resolver over `store`, handing enrolled evaluations to `sink` and
    /// refusing requests over `limits` (the same limits as `cohortd.v1`).
    pub fn new(store: Arc<Store>, sink: Arc<dyn ExposureSink>, limits: Limits) -> Resolver {
        Resolver {
            store,
            sink,
            limits,
        }
    }

    /// The store served from (the event stream subscribes to it).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What every single-flag resolution checks first: the key and context
    /// against the limits, then the serving snapshot (NotReady before the first
    /// config).
    fn snapshot_for(&self, flag: &str, ctx: &Struct) -> Result<Arc<Snapshot>, ResolveError> {
        self.limits.check_key("flag key", flag)?;
        self.limits.check_context(ctx)?;
        self.store.load().ok_or(ResolveError::NotReady)
    }

    /// Resolves `flag` for `ctx` as a `want` value. An enrolled unit's evaluation
    /// (or a flagd flag bucketed by `fractional`) is an exposure (source `flagd`);
    /// errors record nothing.
    ///
    /// A flagd flag that serves the caller's default resolves with no value and
    /// no variant (reason DISABLED, or DEFAULT when it has no default variant),
    /// as flagd does; except that flagd's v1 service (`v1`) reports a missing
    /// default variant as FLAG_NOT_FOUND.
    pub fn resolve(
        &self,
        flag: &str,
        ctx: Option<&Struct>,
        want: ValueType,
        v1: bool,
        sel: Option<&Selector>,
    ) -> Result<Resolution, ResolveError> {
        let empty = Struct::default();
        let ctx = ctx.unwrap_or(&empty);
        self.limits.check_key("flag key", flag)?;
        self.limits.check_context(ctx)?;
        let snap = self.store.load().ok_or(ResolveError::NotReady)?;
        let found = select(&snap, flag, sel)?;
        self.resolve_found(&snap, found, ctx, want, v1, |r| {
            let (value, variant) = match r.value {
                // resolve_checked checked the type, so `convert` succeeds.
                Some((v, name)) => (convert(v, want), Some(name.to_owned())),
                None => (None, None),
            };
            Resolution {
                variant,
                value,
                reason: r.reason,
                metadata: r.metadata_struct(),
            }
        })
    }

    /// [`Resolver::resolve`] for a context still encoded as it came on the wire
    /// (a `google.protobuf.Struct`'s bytes), read by [`WireContext`]; the
    /// borrowed result goes to `out` (the services write the response with
    /// [`super::encode`]). Same limits, same answers; bytes that are no
    /// `Struct` are INVALID_ARGUMENT.
    ///
    /// The flag is looked up before the context is read, so that for a flag
    /// with targeting the walk that checks the bytes also builds the JSON the
    /// targeting reads (the bytes are read once), and no JSON is built for a
    /// flag without. Errors keep their order: the context's first, then
    /// readiness, then the flag's.
    pub fn resolve_encoded<T>(
        &self,
        flag: &str,
        ctx: &[u8],
        want: ValueType,
        v1: bool,
        sel: Option<&Selector>,
        out: impl FnOnce(Resolved<'_>) -> T,
    ) -> Result<T, Status> {
        self.limits
            .check_key("flag key", flag)
            .map_err(ResolveError::from)?;
        let snap = self.store.load();
        let found = snap.as_deref().map(|s| select(s, flag, sel));
        let chunks = [ctx];
        let ctx = match found {
            Some(Ok(f)) if f.reads_json() => WireContext::decode_with_json(&chunks, &self.limits),
            _ => WireContext::decode(&chunks, &self.limits),
        }
        .map_err(|e| match e {
            ContextError::Limit(l) => Status::from(ResolveError::Rejected(l)),
            ContextError::Wire(_) => Status::invalid_argument(e.to_string()),
        })?;
        let (Some(snap), Some(found)) = (&snap, found) else {
            return Err(ResolveError::NotReady.into());
        };
        Ok(self.resolve_found(snap, found?, &ctx, want, v1, out)?)
    }

    /// The rest of a single-flag resolution once the key and context passed
    /// the limits and the flag was found in `snap`: resolves it, checks the
    /// value's type, records the exposure and hands the borrowed result to
    /// `out`.
    fn resolve_found<C: Context, T>(
        &self,
        snap: &Snapshot,
        found: Flag<'_>,
        ctx: &C,
        want: ValueType,
        v1: bool,
        out: impl FnOnce(Resolved<'_>) -> T,
    ) -> Result<T, ResolveError> {
        let flag = found.key();
        let r = resolve_flag(found, ctx, EvalOptions::default());
        let value = match served(&r)? {
            Some((value, variant)) => {
                if !has_type(value, want) {
                    return Err(ResolveError::TypeMismatch {
                        flag: flag.to_owned(),
                        variant: variant.to_owned(),
                        wanted: want.as_str(),
                        found: json_type(value),
                    });
                }
                Some((value, variant))
            }
            None if v1 && r.reason != Reason::Disabled => {
                return Err(ResolveError::NotFound(flag.to_owned(), String::new()))
            }
            None => None,
        };
        record(&*self.sink, &r, ctx, snap, Source::Flagd);
        Ok(out(Resolved {
            value,
            reason: reason_of(&r),
            version: snap.version(),
            r: &r,
        }))
    }

    /// Resolves every served flag for `ctx` (v1 `ResolveAll`). Like flagd, flags
    /// that cannot be resolved for this context (missing unit attribute) or whose
    /// value has no `AnyFlag` form (arrays, null) are left out. Bulk evaluation is
    /// prefetching, not exposure, so nothing is recorded (as with `AssignAll`).
    pub fn resolve_all(
        &self,
        ctx: Option<&Struct>,
        sel: Option<&Selector>,
    ) -> Result<(Vec<(String, AnyResolution)>, Struct), ResolveError> {
        let empty = Struct::default();
        let ctx = ctx.unwrap_or(&empty);
        self.limits.check_context(ctx)?;
        let snap = self.store.load().ok_or(ResolveError::NotReady)?;
        let mut flags = Vec::new();
        for flag in snap
            .flags()
            .filter(|f| sel.is_none_or(|s| snap.selects(*f, s)))
        {
            let r = resolve_flag(flag, ctx, EvalOptions::default());
            // flagd's v1 ResolveAll leaves out what fails, and flags serving the
            // caller's default whose default variant gives no type.
            let (value, variant) = match served(&r) {
                Ok(Some((value, variant))) => (value, variant),
                Ok(None) => match zero_of(flag) {
                    Some(zero) => (zero, ""),
                    None => continue,
                },
                Err(_) => continue,
            };
            let value = match value {
                serde_json::Value::Bool(b) => FlagValue::Bool(*b),
                serde_json::Value::String(s) => FlagValue::String(s.clone()),
                serde_json::Value::Number(n) => match n.as_f64() {
                    Some(f) => FlagValue::Float(f),
                    None => continue,
                },
                serde_json::Value::Object(m) => FlagValue::Object(json_object_to_struct(m)),
                serde_json::Value::Array(_) | serde_json::Value::Null => continue,
            };
            flags.push((
                flag.key().to_owned(),
                AnyResolution {
                    variant: variant.to_owned(),
                    value,
                    reason: reason_of(&r),
                    metadata: metadata(snap.version(), &r),
                },
            ));
        }
        Ok((flags, set_metadata(&snap, sel)))
    }

    /// Resolves `flag` for `ctx` with the variant's value as configured (its own
    /// JSON type), for protocols that ask for no type (OFREP). Exposures as in
    /// [`Resolver::resolve`], recorded with `source`.
    pub fn resolve_value(
        &self,
        flag: &str,
        ctx: &Struct,
        source: Source,
        sel: Option<&Selector>,
    ) -> Result<ValueResolution, ResolveError> {
        let snap = self.snapshot_for(flag, ctx)?;
        let r = resolve_selected(&snap, flag, ctx, sel)?;
        let out = value_resolution(&snap, &r)?;
        record(&*self.sink, &r, ctx, &snap, source);
        Ok(out)
    }

    /// Every served flag for `ctx`, each resolved (value in its own JSON type) or
    /// with the reason it cannot be for this context, plus flag-set metadata. Bulk
    /// evaluation is prefetching, not exposure: nothing is recorded.
    #[allow(clippy::type_complexity)]
    pub fn resolve_all_values(
        &self,
        ctx: &Struct,
        sel: Option<&Selector>,
    ) -> Result<(Vec<(String, Result<ValueResolution, ResolveError>)>, Struct), ResolveError> {
        self.limits.check_context(ctx)?;
        let snap = self.store.load().ok_or(ResolveError::NotReady)?;
        let flags = snap
            .flags()
            .filter(|f| sel.is_none_or(|s| snap.selects(*f, s)))
            .map(|flag| {
                let r = resolve_flag(flag, ctx, EvalOptions::default());
                (flag.key().to_owned(), value_resolution(&snap, &r))
            })
            .collect();
        Ok((flags, set_metadata(&snap, sel)))
    }
}

/// The `Flagd-Selector` of a gRPC request (flagd reads it on every
/// evaluation method; `None` when absent, empty or not text).
pub fn request_selector(md: &tonic::metadata::MetadataMap) -> Option<Selector> {
    Selector::parse(md.get(super::sync::SELECTOR_HEADER)?.to_str().ok()?)
}

/// Looks `flag` up among the flags `sel` selects (all without one) and
/// resolves it; a flag the selector leaves out is not found, as in flagd.
fn resolve_selected<'s, C: Context + ?Sized>(
    snap: &'s Snapshot,
    flag: &str,
    ctx: &C,
    sel: Option<&Selector>,
) -> Result<ResolutionOf<'s>, ResolveError> {
    let f = select(snap, flag, sel)?;
    Ok(resolve_flag(f, ctx, EvalOptions::default()))
}

/// Looks `flag` up among the flags `sel` selects (all without one); a flag
/// the selector leaves out is not found, as in flagd.
fn select<'s>(
    snap: &'s Snapshot,
    flag: &str,
    sel: Option<&Selector>,
) -> Result<Flag<'s>, ResolveError> {
    match snap.flag(flag) {
        Ok(f) => match sel {
            Some(s) if !snap.selects(f, s) => Err(ResolveError::NotFound(
                flag.to_owned(),
                format!(" selected by `Flagd-Selector: {s}`"),
            )),
            _ => Ok(f),
        },
        Err(EvalError::NotFound(k)) => {
            let hint = snap.did_you_mean(&k);
            Err(ResolveError::NotFound(k, hint))
        }
        Err(EvalError::Draft(k)) => Err(ResolveError::Draft(k)),
    }
}

/// Bulk metadata: the config version, and the selected flag set reflected
/// back as flagd does (`flagSetId`).
fn set_metadata(snap: &Snapshot, sel: Option<&Selector>) -> Struct {
    let mut set = Struct::default();
    set.fields
        .insert("configVersion".into(), string(snap.version()));
    if let Some(Selector::FlagSet(id)) = sel {
        set.fields.insert("flagSetId".into(), string(id));
    }
    set
}

/// A resolution whose value keeps its configured JSON type (see
/// [`Resolver::resolve_value`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueResolution {
    /// The variant key (empty when the caller's default is served).
    pub variant: String,
    /// The variant's value, as configured; null when the caller's default is
    /// served (a disabled flagd flag, or one without a default variant).
    pub value: serde_json::Value,
    /// The flagd reason.
    pub reason: &'static str,
    /// Flag metadata.
    pub metadata: Struct,
}

fn value_resolution(
    snap: &Snapshot,
    r: &ResolutionOf<'_>,
) -> Result<ValueResolution, ResolveError> {
    let (value, variant) = match served(r)? {
        Some((value, variant)) => (value.clone(), variant.to_owned()),
        None => (serde_json::Value::Null, String::new()),
    };
    Ok(ValueResolution {
        variant,
        value,
        reason: reason_of(r),
        metadata: metadata(snap.version(), r),
    })
}

/// The reason string sent. A flag with no default variant that serves the
/// caller's default says DEFAULT with no value and no variant: flagd's ADR
/// "Support Explicit Code Default Values" (accepted), and what providers test
/// for (the Python flagd provider 0.6.1 serves the caller's default only for
/// DEFAULT/DISABLED without a variant; with any other reason it served the
/// proto zero value, `""`, which tests/openfeature_python_flagd_files.rs caught).
fn reason_of(r: &ResolutionOf<'_>) -> &'static str {
    r.reason.as_str()
}

/// Hands the evaluation to the exposure sink when it is an exposure: an
/// enrolled experiment unit, or a flagd flag whose variant `fractional` chose.
fn record(
    sink: &dyn ExposureSink,
    r: &ResolutionOf<'_>,
    ctx: &dyn Context,
    snap: &Snapshot,
    source: Source,
) {
    if let Some(subject) = Subject::of(r) {
        expose(sink, subject, ctx, snap.version(), source);
    }
}

/// flagd's ResolveAll serves a flag that resolves to the caller's default with
/// the zero value of its default variant's type; `None` when there is none.
fn zero_of(flag: Flag<'_>) -> Option<&'static serde_json::Value> {
    static ZERO: std::sync::LazyLock<[serde_json::Value; 4]> = std::sync::LazyLock::new(|| {
        [
            serde_json::Value::Bool(false),
            serde_json::Value::String(String::new()),
            serde_json::Value::from(0.0),
            serde_json::Value::Object(serde_json::Map::new()),
        ]
    });
    let Flag::Flagd(f, _) = flag else {
        return None;
    };
    let default = f.variants.get(f.default_variant.as_deref()?)?;
    Some(match default {
        serde_json::Value::Bool(_) => &ZERO[0],
        serde_json::Value::String(_) => &ZERO[1],
        serde_json::Value::Number(_) => &ZERO[2],
        serde_json::Value::Object(_) => &ZERO[3],
        _ => return None,
    })
}

/// One flag in a `ResolveAll` answer (numbers are floats there, as in flagd).
#[derive(Debug, Clone, PartialEq)]
pub struct AnyResolution {
    /// The variant key.
    pub variant: String,
    /// The value: bool, string, float or object.
    pub value: FlagValue,
    /// The flagd reason.
    pub reason: &'static str,
    /// Flag metadata.
    pub metadata: Struct,
}

/// The value and variant of a resolution (`None`: the caller's default), or the
/// flagd error for it.
#[allow(clippy::type_complexity)]
fn served<'s>(
    r: &ResolutionOf<'s>,
) -> Result<Option<(&'s serde_json::Value, &'s str)>, ResolveError> {
    let flag = || r.flag.key().to_owned();
    match (r.value, r.variant, r.error) {
        (_, _, Some(FlagError::TargetingKeyMissing { attribute })) => {
            Err(ResolveError::TargetingKeyMissing {
                flag: flag(),
                attribute: attribute.to_owned(),
            })
        }
        (_, _, Some(FlagError::UnknownVariant)) => Err(ResolveError::Targeting {
            flag: flag(),
            what: "a name",
        }),
        (_, _, Some(FlagError::NotAVariantName)) => Err(ResolveError::Targeting {
            flag: flag(),
            what: "an object or array",
        }),
        (Served::Value(v), Some(variant), None) => Ok(Some((v, variant))),
        _ => Ok(None),
    }
}

/// Converts a variant value to `want`, or `None` on a type mismatch.
pub fn convert(v: &serde_json::Value, want: ValueType) -> Option<FlagValue> {
    use serde_json::Value as J;
    match (want, v) {
        (ValueType::Boolean, J::Bool(b)) => Some(FlagValue::Bool(*b)),
        (ValueType::String, J::String(s)) => Some(FlagValue::String(s.clone())),
        (ValueType::Integer, J::Number(n)) => int_of(n).map(FlagValue::Int),
        (ValueType::Float, J::Number(n)) => n.as_f64().map(FlagValue::Float),
        (ValueType::Object, J::Object(m)) => Some(FlagValue::Object(json_object_to_struct(m))),
        _ => None,
    }
}

/// A number as `ResolveInt` serves it: integral floats such as 250.0 are
/// integers; 2^63 and beyond are not i64.
pub fn int_of(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f))
            .then_some(f as i64)
    })
}

/// Whether [`convert`] converts `v` to `want`, without converting it.
fn has_type(v: &serde_json::Value, want: ValueType) -> bool {
    use serde_json::Value as J;
    match (want, v) {
        (ValueType::Boolean, J::Bool(_)) | (ValueType::String, J::String(_)) => true,
        (ValueType::Integer, J::Number(n)) => int_of(n).is_some(),
        (ValueType::Float, J::Number(n)) => n.as_f64().is_some(),
        (ValueType::Object, J::Object(_)) => true,
        _ => false,
    }
}

/// The JSON type of a value, for type-mismatch messages.
fn json_type(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

/// Flag metadata: the config version and what the resolution reports.
fn metadata(version: &str, r: &ResolutionOf<'_>) -> Struct {
    let mut m = Struct::default();
    let f = &mut m.fields;
    f.insert(r.version_key().into(), string(version));
    for (k, v) in r.metadata() {
        let kind = match v {
            Meta::Str(s) => Kind::StringValue(s.to_owned()),
            Meta::Number(n) => Kind::NumberValue(n),
            Meta::Bool(b) => Kind::BoolValue(b),
        };
        f.insert(k.into(), Value { kind: Some(kind) });
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_must_be_integral_and_in_range() {
        assert_eq!(
            convert(&json!(250), ValueType::Integer),
            Some(FlagValue::Int(250))
        );
        assert_eq!(
            convert(&json!(250.0), ValueType::Integer),
            Some(FlagValue::Int(250))
        );
        assert_eq!(convert(&json!(2.5), ValueType::Integer), None);
        assert_eq!(convert(&json!(u64::MAX), ValueType::Integer), None);
        assert_eq!(convert(&json!("7"), ValueType::Integer), None);
    }

    #[test]
    fn each_type_accepts_only_its_own_values() {
        assert_eq!(
            convert(&json!(3), ValueType::Float),
            Some(FlagValue::Float(3.0))
        );
        assert_eq!(convert(&json!(true), ValueType::String), None);
        assert_eq!(convert(&json!("true"), ValueType::Boolean), None);
        assert_eq!(convert(&json!([1, 2]), ValueType::Object), None);
        assert_eq!(convert(&json!(null), ValueType::Object), None);
        assert!(matches!(
            convert(&json!({"a": 1}), ValueType::Object),
            Some(FlagValue::Object(s)) if s.fields.contains_key("a")
        ));
    }

    #[test]
    fn errors_map_to_flagd_status_codes() {
        assert_eq!(
            ResolveError::NotFound("x".into(), String::new()).code(),
            Code::NotFound
        );
        assert_eq!(ResolveError::Draft("x".into()).code(), Code::NotFound);
        let tm = ResolveError::TypeMismatch {
            flag: "f".into(),
            variant: "v".into(),
            wanted: "boolean",
            found: "string",
        };
        assert_eq!(tm.code(), Code::InvalidArgument);
        let s = Status::from(tm);
        assert!(s
            .message()
            .contains("flag `f` variant `v` has a string value"));
    }
}
