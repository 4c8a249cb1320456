//! Estimating a change's impact on a large deterministic synthetic population.
//!
//! Units `unit-0 .. unit-N` are evaluated by both configs through the real
//! [`Experiment::evaluate`], with targeting set aside (the synthetic context holds
//! only unit attributes, so the estimate is over units eligible in both configs,
//! like [`super::exact`]). Each unit attribute gets its own value per unit, so a
//! changed unit attribute is a different id, as it is for real units. Being a
//! sample, each fraction comes with its binomial standard error and a 99% Wilson
//! interval; the tests hold the exact formulas to these intervals.

use serde::Serialize;

use crate::engine::{Attr, Context, EvalOptions};
use crate::snapshot::targeting::CompiledTargeting;
use crate::snapshot::Experiment;

/// The normal quantile for a two-sided 99% interval.
pub const Z99: f64 = 2.575_829_303_548_901;

/// A sampled fraction with its error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proportion {
    /// Units counted.
    pub count: u64,
    /// Sample fraction `count / samples`.
    pub value: f64,
    /// Binomial standard error `sqrt(p (1 - p) / n)`.
    pub std_error: f64,
    /// 99% Wilson score interval (sound at 0 and 1, unlike `p +- z se`).
    pub ci99: [f64; 2],
}

impl Proportion {
    /// The proportion `count / n` with its error.
    pub fn new(count: u64, n: u64) -> Proportion {
        let nf = n.max(1) as f64;
        let p = count as f64 / nf;
        let z2 = Z99 * Z99;
        let denom = 1.0 + z2 / nf;
        let center = (p + z2 / (2.0 * nf)) / denom;
        let half = Z99 / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
        Proportion {
            count,
            value: p,
            std_error: (p * (1.0 - p) / nf).sqrt(),
            ci99: [(center - half).max(0.0), (center + half).min(1.0)],
        }
    }

    /// Whether `x` lies in the 99% interval.
    pub fn covers(&self, x: f64) -> bool {
        self.ci99[0] - 1e-12 <= x && x <= self.ci99[1] + 1e-12
    }
}

/// Sampled counterparts of [`super::diff::Impact`] and the enrolment on each side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Units simulated.
    pub samples: u64,
    /// Enrolled in the old config.
    pub enrolled_before: Proportion,
    /// Enrolled in the new config.
    pub enrolled_after: Proportion,
    /// Enrolled in both, different variant.
    pub moved: Proportion,
    /// Enrolled before only.
    pub left: Proportion,
    /// Enrolled after only.
    pub joined: Proportion,
}

/// A context that holds one value per unit attribute.
struct Synthetic {
    attrs: Vec<(Box<str>, String)>,
}

impl Context for Synthetic {
    fn get(&self, name: &str) -> Option<Attr<'_>> {
        self.attrs
            .iter()
            .find(|(a, _)| &**a == name)
            .map(|(_, v)| Attr::Str(v))
    }
}

fn untargeted(e: Option<&Experiment>) -> Option<Experiment> {
    e.map(|e| {
        let mut e = e.clone();
        e.targeting = CompiledTargeting::default();
        e
    })
}

fn unit_attributes(es: &[&Experiment]) -> Vec<Box<str>> {
    let mut names: Vec<Box<str>> = Vec::new();
    for e in es {
        let more = [Some(&e.hash_key), e.layer.as_ref().map(|l| &l.hash_key)]
            .into_iter()
            .chain([e.holdout.as_ref().map(|h| &h.hash_key)])
            .flatten();
        for n in more {
            if !names.iter().any(|m| **m == **n) {
                names.push((**n).into());
            }
        }
    }
    names
}

/// Evaluates `samples` synthetic units against both versions of an experiment
/// (either may be absent) with ramp schedules at `at`.
pub fn estimate(
    old: Option<&Experiment>,
    new: Option<&Experiment>,
    at: i64,
    samples: u64,
) -> Estimate {
    let (o, n) = (untargeted(old), untargeted(new));
    let present: Vec<&Experiment> = o.iter().chain(n.iter()).collect();
    let names = unit_attributes(&present);
    let opts = EvalOptions {
        now_unix_secs: Some(at),
        ..EvalOptions::default()
    };
    let mut ctx = Synthetic {
        attrs: names.into_iter().map(|n| (n, String::new())).collect(),
    };
    let (mut eb, mut ea, mut moved, mut left, mut joined) = (0, 0, 0, 0, 0);
    for i in 0..samples {
        for (j, (name, value)) in ctx.attrs.iter_mut().enumerate() {
            value.clear();
            // The first attribute carries the plain id; others get their own.
            if j == 0 {
                value.push_str(&format!("unit-{i}"));
            } else {
                value.push_str(&format!("unit-{i}@{name}"));
            }
        }
        let a = o.as_ref().map(|e| e.evaluate(&ctx, opts, &mut ()));
        let b = n.as_ref().map(|e| e.evaluate(&ctx, opts, &mut ()));
        let (ina, inb) = (a.is_some_and(|a| a.enrolled), b.is_some_and(|b| b.enrolled));
        eb += ina as u64;
        ea += inb as u64;
        match (ina, inb) {
            (true, true) => {
                let (a, b) = (a.map(|a| &a.variant.key), b.map(|b| &b.variant.key));
                moved += (a != b) as u64;
            }
            (true, false) => left += 1,
            (false, true) => joined += 1,
            (false, false) => {}
        }
    }
    Estimate {
        samples,
        enrolled_before: Proportion::new(eb, samples),
        enrolled_after: Proportion::new(ea, samples),
        moved: Proportion::new(moved, samples),
        left: Proportion::new(left, samples),
        joined: Proportion::new(joined, samples),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_is_sound_at_the_edges() {
        let p = Proportion::new(0, 1000);
        assert_eq!(p.value, 0.0);
        assert_eq!(p.ci99[0], 0.0);
        assert!(p.ci99[1] > 0.0 && p.ci99[1] < 0.01);
        let q = Proportion::new(500, 1000);
        assert!((q.std_error - 0.5 / 1000f64.sqrt()).abs() < 1e-12);
        assert!(q.covers(0.5) && !q.covers(0.6));
    }
}
