//! The one boundary between OFREP and flag evaluation.
//!
//! OFREP asks for no value type: a flag's value goes out with its own JSON type.
//! Both calls below go through the flagd resolution code today
//! ([`Resolver::resolve_value`], [`Resolver::resolve_all_values`]), which maps
//! cohortd experiments onto OpenFeature values, variants, reasons and metadata.
//! When evaluation moves behind one format-agnostic interface, these two bodies
//! are what changes; the HTTP handlers do not know about config formats.

use std::sync::Arc;

use prost_types::Struct;

use crate::exposure::Source;
use crate::snapshot::selector::Selector;
use crate::transport::flagd::resolve::{ResolveError, Resolver, ValueResolution};

/// The exposure source of OFREP single-flag evaluations.
pub const SOURCE: Source = Source::Ofrep;

/// Evaluates flags for the OFREP handlers.
#[derive(Debug, Clone)]
pub struct Evaluator {
    resolver: Arc<Resolver>,
}

/// Every served flag for one context: each resolved or with its error, and the
/// flag-set metadata.
pub type Bulk = (Vec<(String, Result<ValueResolution, ResolveError>)>, Struct);

impl Evaluator {
    /// An evaluator over a resolver (store, exposure sink and limits).
    pub fn new(resolver: Arc<Resolver>) -> Evaluator {
        Evaluator { resolver }
    }

    /// One flag. An enrolled unit's evaluation is an exposure (source `ofrep`).
    /// `sel` is the request's `Flagd-Selector`: a flag it leaves out is not found.
    pub fn one(
        &self,
        key: &str,
        ctx: &Struct,
        sel: Option<&Selector>,
    ) -> Result<ValueResolution, ResolveError> {
        self.resolver.resolve_value(key, ctx, SOURCE, sel)
    }

    /// Every served flag `sel` selects (prefetching: no exposures).
    pub fn all(&self, ctx: &Struct, sel: Option<&Selector>) -> Result<Bulk, ResolveError> {
        self.resolver.resolve_all_values(ctx, sel)
    }
}
