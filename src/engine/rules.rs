//! How evaluation checks a targeting condition: against the attributes gathered
//! for one experiment, or through a per-call memo that an assign-all call shares
//! between experiments.
//!
//! A condition's result depends only on the condition and the context, and real
//! configs repeat conditions (`region == US` in every experiment of a market, the
//! same `appVersion >= 2.0.0` gate): compiling gives each condition shared by two
//! or more running experiments a slot ([`Cond::memo`]), and [`CondMemo`] computes
//! each such condition once per call instead of once per experiment (one context
//! lookup and, for semantic versions, one parse).

use super::context::{Attr, Context};
use crate::snapshot::targeting::{Cond, COND_MEMO};

/// Checks targeting conditions against one context.
pub(crate) trait Rules<'c> {
    /// Whether the context satisfies `c`, and the value it saw.
    fn check(&mut self, c: &Cond) -> (bool, Option<Attr<'c>>);
}

/// Conditions whose attributes were gathered in one walk of the context
/// ([`super::reads`]): `seen[i]` is the value of the experiment's attribute
/// `i`. A condition on an attribute that was not gathered reads it itself.
pub(crate) struct Gathered<'c, 'g, C: ?Sized> {
    pub(crate) ctx: &'c C,
    pub(crate) seen: &'g [Option<Attr<'c>>],
}

impl<'c, C: Context + ?Sized> Rules<'c> for Gathered<'c, '_, C> {
    #[inline]
    fn check(&mut self, c: &Cond) -> (bool, Option<Attr<'c>>) {
        match self.seen.get(c.read) {
            Some(&seen) => (c.holds(seen), seen),
            None => c.eval(self.ctx),
        }
    }
}

/// Shared conditions evaluated once per call: a fixed array on the stack, one
/// slot per shared condition (at most [`COND_MEMO`]); the others go straight to
/// the context.
pub(crate) struct CondMemo<'c, C: ?Sized> {
    ctx: &'c C,
    slots: [Option<(bool, Option<Attr<'c>>)>; COND_MEMO],
}

impl<'c, C: Context + ?Sized> CondMemo<'c, C> {
    /// An empty memo over `ctx`.
    #[inline]
    pub(crate) fn new(ctx: &'c C) -> Self {
        CondMemo {
            ctx,
            slots: [None; COND_MEMO],
        }
    }
}

impl<'c, C: Context + ?Sized> Rules<'c> for CondMemo<'c, C> {
    #[inline]
    fn check(&mut self, c: &Cond) -> (bool, Option<Attr<'c>>) {
        let Some(slot) = self.slots.get_mut(c.memo) else {
            return c.eval(self.ctx);
        };
        match *slot {
            Some(known) => known,
            None => {
                let r = c.eval(self.ctx);
                *slot = Some(r);
                r
            }
        }
    }
}
