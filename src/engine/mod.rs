//! Evaluation: the pure function `(snapshot, experiment, context) -> assignment`.
//!
//! Nothing here allocates, locks or does I/O. The same code path serves `Assign`
//! and `Explain`: explaining passes a [`Trace`] that records each decision, while
//! ordinary evaluation passes `()`, whose calls compile to nothing.
//!
//! Over 500 lines because it is one idea, the evaluation of one experiment, kept
//! whole so the decision order (status, unit, targeting, sticky, holdout, layer,
//! traffic, variant) reads top to bottom; the types it reports (reasons, steps,
//! errors) are its vocabulary, and the hashing itself is in [`bucket`].

pub mod bucket;
mod bytes;
pub mod context;
pub mod flagd;
pub mod reads;
pub mod resolve;
pub(crate) mod rules;

use crate::config::Status;
use crate::snapshot::{Experiment, SlotRange, Snapshot, Variant};
use bucket::Unit;
use context::UnitBuf;
pub use context::{Attr, Context};
use reads::READS_MAX;
use rules::{CondMemo, Gathered, Rules};

/// Why a unit got the variant it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Enrolled by hash: the traffic draw let it in and rendezvous chose the variant.
    Split,
    /// Enrolled because the caller passed a sticky assignment that still applies.
    Sticky,
    /// A targeting rule did not match; default variant.
    TargetingMiss,
    /// Held out by a holdout; default variant.
    Holdout,
    /// Outside this experiment's range of its layer; default variant.
    NotInLayer,
    /// Eligible, but the traffic draw is above the allocation; default variant.
    NotInTraffic,
    /// The experiment is paused, stopped or completed with no winner; default variant.
    Disabled,
    /// The experiment is paused, stopped or completed and declares a winner.
    Winner,
    /// The context lacks a usable unit attribute: never hashed, not enrolled; the
    /// default variant, or a plain flag's one value (see
    /// [`Experiment::plain_flag_variant`]).
    MissingUnit,
}

impl Reason {
    /// The snake_case name used in responses, logs and exposures.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Split => "split",
            Reason::Sticky => "sticky",
            Reason::TargetingMiss => "targeting_miss",
            Reason::Holdout => "holdout",
            Reason::NotInLayer => "not_in_layer",
            Reason::NotInTraffic => "not_in_traffic",
            Reason::Disabled => "disabled",
            Reason::Winner => "winner",
            Reason::MissingUnit => "missing_unit",
        }
    }

    /// Every reason, for metrics and documentation.
    pub const ALL: [Reason; 9] = [
        Reason::Split,
        Reason::Sticky,
        Reason::TargetingMiss,
        Reason::Holdout,
        Reason::NotInLayer,
        Reason::NotInTraffic,
        Reason::Disabled,
        Reason::Winner,
        Reason::MissingUnit,
    ];
}

/// A previously recorded assignment the caller wants honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sticky<'a> {
    /// The variant the unit had.
    pub variant: &'a str,
}

/// Per-call evaluation inputs beyond the context.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalOptions<'a> {
    /// A sticky assignment for this experiment, if the caller has one.
    pub sticky: Option<Sticky<'a>>,
    /// The time to evaluate ramp schedules at (Unix seconds); `None` reads the
    /// clock, and only for experiments that have a schedule.
    pub now_unix_secs: Option<i64>,
}

/// The result of evaluating one experiment for one unit.
#[derive(Debug, Clone, Copy)]
pub struct Assignment<'s> {
    /// The experiment.
    pub experiment: &'s Experiment,
    /// The variant served.
    pub variant: &'s Variant,
    /// Whether the unit is in the experiment (split or sticky).
    pub enrolled: bool,
    /// Why.
    pub reason: Reason,
}

/// Why an experiment could not be evaluated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// No experiment has this key.
    #[error("unknown experiment `{0}`")]
    NotFound(String),
    /// The experiment exists but is a draft, which is never served.
    #[error("experiment `{0}` is a draft and is not served")]
    Draft(String),
}

/// One decision step, reported to a [`Trace`].
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// The experiment's status.
    Status(Status),
    /// The unit attribute and whether it identified a unit.
    Unit {
        /// Attribute name.
        attribute: &'a str,
        /// The value seen.
        seen: Option<Attr<'a>>,
        /// Whether it is usable as a unit id.
        usable: bool,
    },
    /// One targeting condition.
    Rule {
        /// Where the rule came from (`include[0]`, `rules[1]`, `segment:beta/...`).
        origin: &'a str,
        /// The rule in words.
        text: &'a str,
        /// The attribute read.
        attribute: &'a str,
        /// The value seen.
        seen: Option<Attr<'a>>,
        /// Whether the condition held.
        matched: bool,
    },
    /// A sticky assignment from the caller.
    Sticky {
        /// The variant asked for.
        variant: &'a str,
        /// Whether it was honoured (the variant still exists).
        honoured: bool,
    },
    /// A holdout draw (held out when `slot < end`).
    Holdout {
        /// Holdout key.
        key: &'a str,
        /// The unit's slot.
        slot: u32,
        /// Threshold.
        end: u64,
    },
    /// A layer draw (inside when `start <= slot < end`).
    Layer {
        /// Layer key.
        key: &'a str,
        /// The unit's slot.
        slot: u32,
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
    },
    /// The traffic draw (enrolled when `slot < threshold`).
    Traffic {
        /// The unit's slot.
        slot: u32,
        /// Threshold.
        threshold: u64,
    },
    /// One variant's rendezvous score (lowest wins).
    Score {
        /// Variant key.
        variant: &'a str,
        /// Weight.
        weight: f64,
        /// Score.
        score: f64,
    },
}

/// Receives decision steps during evaluation.
pub trait Trace {
    /// Called once per decision step, in order.
    fn step(&mut self, step: Step<'_>);

    /// Whether every variant's score must be computed and reported. Explaining
    /// wants them all; plain evaluation (`()`) does not, which lets the engine skip
    /// the logarithm of variants whose score provably cannot win. The winner is
    /// the same either way.
    #[inline(always)]
    fn wants_all_scores(&self) -> bool {
        true
    }
}

impl Trace for () {
    #[inline(always)]
    fn step(&mut self, _: Step<'_>) {}

    #[inline(always)]
    fn wants_all_scores(&self) -> bool {
        false
    }
}

impl Snapshot {
    /// Assigns one unit to one experiment.
    #[inline]
    pub fn assign<C: Context + ?Sized>(
        &self,
        key: &str,
        ctx: &C,
        opts: EvalOptions<'_>,
    ) -> Result<Assignment<'_>, EvalError> {
        self.assign_traced(key, ctx, opts, &mut ())
    }

    /// [`Snapshot::assign`], reporting each decision to `trace`.
    pub fn assign_traced<C: Context + ?Sized, T: Trace>(
        &self,
        key: &str,
        ctx: &C,
        opts: EvalOptions<'_>,
        trace: &mut T,
    ) -> Result<Assignment<'_>, EvalError> {
        match self.experiment(key) {
            None => Err(EvalError::NotFound(key.to_owned())),
            Some(e) if !e.is_served() => Err(EvalError::Draft(key.to_owned())),
            Some(e) => Ok(e.evaluate(ctx, opts, trace)),
        }
    }
}

impl Snapshot {
    /// Assigns the unit in `ctx` to every served experiment, in key order, calling
    /// `f` with each assignment. Nothing is allocated.
    #[inline]
    pub fn assign_all<C: Context + ?Sized, F: FnMut(Assignment<'_>)>(&self, ctx: &C, f: F) {
        self.assign_all_with(ctx, |_| EvalOptions::default(), f)
    }

    /// [`Snapshot::assign_all`] with per-experiment options (e.g. the caller's
    /// sticky assignments), chosen by `opts` for each experiment.
    pub fn assign_all_with<'o, C, O, F>(&self, ctx: &C, mut opts: O, mut f: F)
    where
        C: Context + ?Sized,
        O: FnMut(&Experiment) -> EvalOptions<'o>,
        F: FnMut(Assignment<'_>),
    {
        // Resolve each unit attribute shared by many experiments once, not once per
        // experiment (an assign-all call usually evaluates hundreds with one or two
        // distinct `hashKey`s), and read its words once for all the draws.
        const CACHED: usize = 4;
        let mut bufs: [UnitBuf; CACHED] = Default::default();
        let mut units: [(Option<Attr<'_>>, Option<Unit<'_>>); CACHED] = [(None, None); CACHED];
        for ((buf, key), unit) in bufs.iter_mut().zip(&*self.unit_keys).zip(&mut units) {
            let seen = ctx.get(key);
            *unit = (seen, buf.unit_bytes(seen).map(Unit::new));
        }
        let cached = self.unit_keys.len().min(CACHED);
        // Conditions shared between experiments are evaluated once per call.
        let mut memo = CondMemo::new(ctx);
        for e in self.served() {
            let o = opts(e);
            let a = match e.not_running(&mut ()) {
                Some(a) => a,
                None if e.unit_key < cached => {
                    let (seen, unit) = units[e.unit_key];
                    e.evaluate_unit(ctx, &mut memo, seen, unit, o, &mut ())
                }
                None => {
                    let mut buf = UnitBuf::default();
                    let seen = ctx.get(&e.hash_key);
                    let unit = buf.unit_bytes(seen).map(Unit::new);
                    e.evaluate_unit(ctx, &mut memo, seen, unit, o, &mut ())
                }
            };
            f(a);
        }
    }
}

impl Experiment {
    /// The variant every unit gets when the experiment cannot tell units apart: it is
    /// running with full traffic and no ramp schedule, no targeting, layer or holdout,
    /// and exactly one variant with a positive weight. That is a plain flag (a kill
    /// switch), which flagd users evaluate without a targeting key. (A schedule rules
    /// it out because providers cache STATIC values until a config change, and a
    /// ramp changes the answer without one.)
    pub fn plain_flag_variant(&self) -> Option<&Variant> {
        let e = self;
        if e.status != Status::Running
            || !e.schedule.is_empty()
            || e.traffic < bucket::threshold(1.0)
            || e.layer.is_some()
            || e.holdout.is_some()
            || !e.targeting.conds.is_empty()
        {
            return None;
        }
        let mut live = e.variants.iter().filter(|v| v.weight > 0.0);
        match (live.next(), live.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }

    fn outside(&self, reason: Reason) -> Assignment<'_> {
        Assignment {
            experiment: self,
            variant: &self.variants[self.default_variant],
            enrolled: false,
            reason,
        }
    }

    /// Evaluates this experiment for the unit in `ctx`. Drafts evaluate like
    /// stopped experiments here; [`Snapshot::assign`] refuses them earlier.
    #[inline]
    pub fn evaluate<C: Context + ?Sized, T: Trace>(
        &self,
        ctx: &C,
        opts: EvalOptions<'_>,
        trace: &mut T,
    ) -> Assignment<'_> {
        if let Some(a) = self.not_running(trace) {
            return a;
        }
        // Every attribute this experiment reads, found in one walk of the context.
        let mut gathered = [None; READS_MAX];
        let gathered = &mut gathered[..self.reads.len()];
        ctx.get_reads(&self.reads, gathered);
        let seen = match gathered.first() {
            Some(&unit) => unit,
            None => ctx.get(&self.hash_key),
        };
        let mut buf = UnitBuf::default();
        let unit = buf.unit_bytes(seen).map(Unit::new);
        let mut rules = Gathered {
            ctx,
            seen: gathered,
        };
        self.evaluate_unit(ctx, &mut rules, seen, unit, opts, trace)
    }

    /// The status step: the assignment of an experiment that is not running (its
    /// winner or its default, for everyone), or `None` when it runs.
    #[inline]
    fn not_running<T: Trace>(&self, trace: &mut T) -> Option<Assignment<'_>> {
        trace.step(Step::Status(self.status));
        if self.status == Status::Running {
            return None;
        }
        Some(match self.winner {
            Some(w) => Assignment {
                experiment: self,
                variant: &self.variants[w],
                enrolled: false,
                reason: Reason::Winner,
            },
            None => self.outside(Reason::Disabled),
        })
    }

    /// Evaluates a running experiment for a unit already read from the context:
    /// `seen` is the `hashKey` attribute and `unit` its bytes (see [`UnitBuf`]);
    /// `rules` checks the targeting conditions (directly, or through a memo).
    #[inline]
    fn evaluate_unit<'c, C: Context + ?Sized, R: Rules<'c>, T: Trace>(
        &self,
        ctx: &'c C,
        rules: &mut R,
        seen: Option<Attr<'_>>,
        unit: Option<Unit<'_>>,
        opts: EvalOptions<'_>,
        trace: &mut T,
    ) -> Assignment<'_> {
        trace.step(Step::Unit {
            attribute: &self.hash_key,
            seen,
            usable: unit.is_some(),
        });
        let Some(unit) = unit else {
            // A plain flag does not bucket, so it needs no unit: everyone gets its
            // one value, in every API (flagd reports it STATIC).
            return match self.plain_flag_variant() {
                Some(v) => Assignment {
                    experiment: self,
                    variant: v,
                    enrolled: false,
                    reason: Reason::MissingUnit,
                },
                None => self.outside(Reason::MissingUnit),
            };
        };
        for c in self.targeting.conds.iter() {
            let (matched, seen) = rules.check(c);
            trace.step(Step::Rule {
                origin: &c.origin,
                text: &c.text,
                attribute: &c.attribute,
                seen,
                matched,
            });
            if !matched {
                return self.outside(Reason::TargetingMiss);
            }
        }
        if let Some(h) = &self.holdout {
            match range_slot(h, ctx, &unit) {
                None => return self.outside(Reason::MissingUnit),
                Some(slot) => {
                    trace.step(Step::Holdout {
                        key: &h.key,
                        slot,
                        end: h.end,
                    });
                    if (slot as u64) < h.end {
                        return self.outside(Reason::Holdout);
                    }
                }
            }
        }
        if let Some(l) = &self.layer {
            match range_slot(l, ctx, &unit) {
                None => return self.outside(Reason::MissingUnit),
                Some(slot) => {
                    trace.step(Step::Layer {
                        key: &l.key,
                        slot,
                        start: l.start,
                        end: l.end,
                    });
                    if !(l.start <= slot as u64 && (slot as u64) < l.end) {
                        return self.outside(Reason::NotInLayer);
                    }
                }
            }
        }
        // Sticky comes after targeting, holdout and layer on purpose: it may keep a
        // unit on its variant through traffic and weight changes, but it cannot
        // place a unit into an experiment that mutual exclusion keeps it out of.
        if let Some(s) = opts.sticky {
            let found = self.variants.iter().find(|v| &*v.key == s.variant);
            trace.step(Step::Sticky {
                variant: s.variant,
                honoured: found.is_some(),
            });
            if let Some(v) = found {
                return Assignment {
                    experiment: self,
                    variant: v,
                    enrolled: true,
                    reason: Reason::Sticky,
                };
            }
        }
        let slot = bucket::slot(self.traffic_draw.draw_unit(&unit));
        let threshold = self.traffic_at(opts.now_unix_secs);
        trace.step(Step::Traffic { slot, threshold });
        if slot as u64 >= threshold {
            return self.outside(Reason::NotInTraffic);
        }
        let best = if trace.wants_all_scores() {
            choose_scoring_all(&self.variants, unit.bytes(), trace)
        } else if self.equal_weights {
            choose_equal(&self.variants, &unit)
        } else {
            choose_pruned(&self.variants, &unit)
        };
        match best {
            Some(v) => Assignment {
                experiment: self,
                variant: v,
                enrolled: true,
                reason: Reason::Split,
            },
            // Unreachable for valid running experiments (compile requires a weight > 0).
            None => self.outside(Reason::NotInTraffic),
        }
    }
}

/// Weighted rendezvous hashing, the reference form: every variant with a positive
/// weight is scored and reported; the lowest score wins, ties to the smaller key.
fn choose_scoring_all<'v, T: Trace>(
    variants: &'v [Variant],
    unit: &[u8],
    trace: &mut T,
) -> Option<&'v Variant> {
    let mut best: Option<(&Variant, f64)> = None;
    for v in variants {
        if v.weight <= 0.0 {
            continue;
        }
        let score = bucket::rendezvous_score(v.draw.draw(unit), v.weight);
        trace.step(Step::Score {
            variant: &v.key,
            weight: v.weight,
            score,
        });
        best = match best {
            Some((b, bs)) if bs < score || (bs == score && b.key <= v.key) => Some((b, bs)),
            _ => Some((v, score)),
        };
    }
    best.map(|(v, _)| v)
}

/// The same winner as [`choose_scoring_all`], computing fewer logarithms, usually
/// none: the variant with the smallest lower bound ([`bucket::score_lower_bound`])
/// is the candidate; when its upper bound is certainly below the smallest lower
/// bound of the others ([`bucket::certainly_below`], monotonic in the lower
/// bound, so that one comparison covers every other variant) it wins outright.
/// Otherwise its score is computed, and any other variant whose lower bound is
/// certainly above the best score so far is skipped ([`bucket::certainly_above`]).
/// Skipped variants score strictly worse than the winner, so neither the
/// minimum nor the tie-break can change.
///
/// One pass keeps only the candidate and the runner-up's bound in registers;
/// the rare second pass draws again rather than every call storing each draw.
#[inline]
fn choose_pruned<'v>(variants: &'v [Variant], unit: &Unit<'_>) -> Option<&'v Variant> {
    // Candidate (index, draw, lower bound) and the smallest lower bound of the rest.
    let mut first: Option<(usize, u64, f64)> = None;
    let mut rest = f64::INFINITY;
    for (i, v) in variants.iter().enumerate() {
        if v.weight <= 0.0 {
            continue;
        }
        let d = v.draw.draw_unit(unit);
        let l = bucket::score_lower_bound(d, v.inv_weight);
        // Bounds are never NaN: compiling requires finite weights, so `1 / w`
        // is positive (possibly infinite) and so is every bound.
        match first {
            Some((_, _, l0)) if l >= l0 => rest = rest.min(l),
            // The candidate's bound is the smallest seen, so it is the new
            // runner-up bound.
            Some((_, _, l0)) => {
                rest = l0;
                first = Some((i, d, l));
            }
            None => first = Some((i, d, l)),
        }
    }
    let (i0, d0, _) = first?;
    let mut best = &variants[i0];
    let upper = bucket::score_upper_bound(d0, best.inv_weight);
    if bucket::certainly_below(upper, rest) {
        return Some(best);
    }
    let mut best_score = bucket::rendezvous_score(d0, best.weight);
    for (i, v) in variants.iter().enumerate() {
        if i == i0 || v.weight <= 0.0 {
            continue;
        }
        let d = v.draw.draw_unit(unit);
        if bucket::cannot_beat(d, v.inv_weight, best_score) {
            continue;
        }
        let score = bucket::rendezvous_score(d, v.weight);
        if score < best_score || (score == best_score && v.key < best.key) {
            best = v;
            best_score = score;
        }
    }
    Some(best)
}

/// [`choose_pruned`] for variants that all have the same positive weight (the
/// usual A/B/n split), with no floating point at all in nearly every call: the
/// scores `-ln(u) / w` then differ only by `u`, which grows with `draw >> 12`,
/// so the largest of those wins ([`certain_top`]). When the two largest are too
/// close for the computed scores to be certainly ordered (an exact tie, which
/// the smaller key breaks, included) the scores decide as in [`choose_pruned`].
/// Inlined into evaluation (its one caller on the request path): called, its
/// prologue, epilogue and saved registers were an eighth of its cost.
#[inline(always)]
fn choose_equal<'v>(variants: &'v [Variant], unit: &Unit<'_>) -> Option<&'v Variant> {
    match certain_top(variants, |v| v.draw.draw_unit(unit)) {
        Some(i) => variants.get(i),
        None => choose_pruned(variants, unit),
    }
}

/// The position of the largest `draw >> 12`, when it is certainly the lowest
/// computed score of equal weights; `None` when there are no draws or the
/// runner-up is within a relative 2^-23 of it. Why that margin suffices: with
/// `u1 > u2` (the unit intervals of the top two draws) the true scores differ by
/// `ln(u1 / u2) / w >= (u1 - u2) / (u1 w)`, and the computed ones are each within
/// a relative 1e-9 of the true one (the same bound as [`bucket::certainly_below`]:
/// far above the few rounding errors of a logarithm and a division), so at most
/// `2e-9 * 36.8 / w` apart from it (`-ln(u) <= 36.8` for every draw). A relative
/// gap of 2^-23 (1.2e-7) exceeds 7.4e-8, so the order of the computed scores is
/// the order of `u`, strictly: neither the winner nor a tie can differ.
///
/// Takes the items and their draw rather than an iterator of draws: with the
/// draw inlined, a mapped iterator's `next` grew past LLVM's inlining limit and
/// became a call per variant (+28 instructions an assignment, callgrind).
#[inline(always)]
fn certain_top<T>(items: &[T], draw: impl Fn(&T) -> u64) -> Option<usize> {
    // `top` and `next` are `(draw >> 12) + 1`; 0 means none seen yet. Written
    // as minimum, maximum and a select rather than two branches: the draws are
    // random, so which way `a > top` goes is unpredictable from unit to unit.
    let (mut at, mut top, mut next) = (0, 0u64, 0u64);
    for (i, item) in items.iter().enumerate() {
        let a = (draw(item) >> 12) + 1;
        // The old top becomes the runner-up when `a` beats it, else `a` may.
        next = next.max(a.min(top));
        at = if a > top { i } else { at };
        top = top.max(a);
    }
    (top - next > (top >> 23) + 1).then_some(at)
}

/// The unit's slot for a layer or holdout draw, reusing the experiment's unit bytes
/// when the draw uses the same attribute.
#[inline]
fn range_slot<C: Context + ?Sized>(r: &SlotRange, ctx: &C, unit: &Unit<'_>) -> Option<u32> {
    if r.same_unit {
        return Some(bucket::slot(r.draw.draw_unit(unit)));
    }
    let mut buf = UnitBuf::default();
    let other = buf.unit_bytes(ctx.get(&r.hash_key))?;
    Some(bucket::slot(r.draw.draw(other)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bucket::{purpose, DrawKey};

    fn variants(weights: &[f64]) -> Vec<Variant> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                let key = format!("v{i}");
                Variant {
                    draw: DrawKey::derive(purpose::VARIANT, "salt", &key),
                    value: serde_json::Value::Null,
                    key: key.into(),
                    weight,
                    inv_weight: 1.0 / weight,
                }
            })
            .collect()
    }

    /// Equal weights choose by integers: always the reference winner, for 1 to
    /// 20 variants and weights whose division rounds (1/3, 0.1) or not.
    #[test]
    fn equal_choice_equals_reference_choice() {
        for n in [1usize, 2, 3, 4, 7, 20] {
            for w in [1.0, 1.0 / 3.0, 0.1, 7.0, 1e-9] {
                let vs = variants(&vec![w; n]);
                for i in 0..20_000u32 {
                    let unit = format!("unit-{i}");
                    let reference = choose_scoring_all(&vs, unit.as_bytes(), &mut ());
                    let equal = choose_equal(&vs, &Unit::new(unit.as_bytes()));
                    assert_eq!(
                        reference.map(|v| &v.key),
                        equal.map(|v| &v.key),
                        "{n} x {w} {unit}"
                    );
                }
            }
        }
    }

    /// The integer decision against the computed scores, for draws made to be
    /// close: equal, one apart, at the margin, at both ends of the range.
    #[test]
    fn certain_top_agrees_with_scores_near_ties() {
        let close = |a: u64, gap: u64| [a << 12, (a - gap) << 12 | 0xfff];
        let mut cases = vec![[0u64, 0], [u64::MAX, u64::MAX], [1 << 12, 0]];
        for a in [1u64 << 20, 1 << 40, (1 << 52) - 1, 3 << 50, 12345] {
            for gap in [0u64, 1, 2, a >> 23, (a >> 23) + 1, (a >> 23) + 2, a >> 10] {
                if gap <= a {
                    cases.push(close(a, gap));
                }
            }
        }
        for draws in cases {
            for order in [[0, 1], [1, 0]] {
                let d = [draws[order[0]], draws[order[1]]];
                if let Some(i) = certain_top(&d, |&d| d) {
                    for w in [1.0, 1.0 / 3.0, 1e-9] {
                        let (si, so) = (
                            bucket::rendezvous_score(d[i], w),
                            bucket::rendezvous_score(d[1 - i], w),
                        );
                        assert!(si < so, "{d:x?} {w}: {si} {so}");
                    }
                }
            }
        }
        assert_eq!(certain_top(&[] as &[u64], |&d| d), None);
        assert_eq!(certain_top(&[5u64 << 12], |&d| d), Some(0));
        assert_eq!(certain_top(&[7u64 << 12, 7 << 12], |&d| d), None);
    }

    /// Pruning only skips logarithms: the winner is always the reference winner,
    /// for equal, unequal, tiny, huge and zero weights and up to 20 variants.
    #[test]
    fn pruned_choice_equals_reference_choice() {
        let shapes: [&[f64]; 8] = [
            &[1.0],
            &[1.0, 1.0],
            &[1.0, 1.0, 1.0],
            &[1.0, 2.0, 7.0],
            &[0.0, 1.0, 0.0, 3.0],
            &[1e-9, 1e9, 0.5],
            &[0.25; 12],
            &[1.0; 20],
        ];
        for weights in shapes {
            let vs = variants(weights);
            for i in 0..20_000u32 {
                let unit = format!("unit-{i}");
                let reference = choose_scoring_all(&vs, unit.as_bytes(), &mut ());
                let pruned = choose_pruned(&vs, &Unit::new(unit.as_bytes()));
                assert_eq!(
                    reference.map(|v| &v.key),
                    pruned.map(|v| &v.key),
                    "{weights:?} {unit}"
                );
            }
        }
    }
}
