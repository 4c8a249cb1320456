//! What `Explain` returns: each decision the engine took for one unit, as the
//! proto `ExplainStep`s a person reads (the engine reports [`Step`]s to a
//! [`Trace`]; this renders them).

use crate::engine::{Assignment, Reason, Step, Trace};
use crate::transport::convert::attr_to_proto;
use crate::transport::pb;

/// Collects engine [`Step`]s as proto `ExplainStep`s. Score steps are marked
/// `passed` afterwards, once the winner is known.
#[derive(Default)]
pub struct ExplainSteps(Vec<pb::ExplainStep>);

impl Trace for ExplainSteps {
    fn step(&mut self, step: Step<'_>) {
        let seen = |s: Option<crate::engine::Attr<'_>>| s.map(attr_to_proto);
        let s = match step {
            Step::Status(st) => pb::ExplainStep {
                kind: "status".into(),
                description: format!("status is {}", st.as_str()),
                passed: st == crate::config::Status::Running,
                ..Default::default()
            },
            Step::Unit {
                attribute,
                seen: v,
                usable,
            } => pb::ExplainStep {
                kind: "unit".into(),
                description: if usable {
                    format!("unit id read from `{attribute}`")
                } else {
                    format!("`{attribute}` is missing or not a usable unit id")
                },
                passed: usable,
                attribute: attribute.into(),
                seen: seen(v),
                ..Default::default()
            },
            Step::Rule {
                origin,
                text,
                attribute,
                seen: v,
                matched,
            } => pb::ExplainStep {
                kind: "rule".into(),
                // "passed"/"failed" rather than "matched": an exclude that
                // passes is one whose excluded value did not match.
                description: format!(
                    "{origin}: {text}: {}",
                    if matched {
                        "passed"
                    } else {
                        "failed, so the unit is outside the targeting"
                    }
                ),
                passed: matched,
                attribute: attribute.into(),
                seen: seen(v),
                ..Default::default()
            },
            Step::Sticky { variant, honoured } => pb::ExplainStep {
                kind: "sticky".into(),
                description: if honoured {
                    format!("sticky assignment to `{variant}` honoured")
                } else {
                    format!("sticky assignment to `{variant}` ignored: no such variant")
                },
                passed: honoured,
                variant: variant.into(),
                ..Default::default()
            },
            Step::Holdout { key, slot, end } => pb::ExplainStep {
                kind: "holdout".into(),
                description: format!(
                    "holdout `{key}`: slot {slot} {} threshold {end}",
                    if (slot as u64) < end {
                        "< (held out)"
                    } else {
                        ">= (not held out)"
                    }
                ),
                passed: slot as u64 >= end,
                slot: slot.into(),
                threshold: end,
                ..Default::default()
            },
            Step::Layer {
                key,
                slot,
                start,
                end,
            } => {
                let inside = start <= slot as u64 && (slot as u64) < end;
                pb::ExplainStep {
                    kind: "layer".into(),
                    description: format!(
                        "layer `{key}`: slot {slot} {} range [{start}, {end})",
                        if inside { "inside" } else { "outside" }
                    ),
                    passed: inside,
                    slot: slot.into(),
                    threshold: end,
                    ..Default::default()
                }
            }
            Step::Traffic { slot, threshold } => {
                let inside = (slot as u64) < threshold;
                pb::ExplainStep {
                    kind: "traffic".into(),
                    description: format!(
                        "traffic: slot {slot} {} threshold {threshold}",
                        if inside {
                            "< (enrolled)"
                        } else {
                            ">= (not enrolled)"
                        }
                    ),
                    passed: inside,
                    slot: slot.into(),
                    threshold,
                    ..Default::default()
                }
            }
            Step::Score {
                variant,
                weight,
                score,
            } => pb::ExplainStep {
                kind: "score".into(),
                description: format!(
                    "variant `{variant}` (weight {weight}) scores {score} (lowest wins)"
                ),
                variant: variant.into(),
                score,
                ..Default::default()
            },
        };
        self.0.push(s);
    }
}

impl ExplainSteps {
    /// The steps, with each score step marked `passed` when its variant won a
    /// split (only a split is decided by the scores).
    pub fn finish(self, a: &Assignment<'_>) -> Vec<pb::ExplainStep> {
        let mut steps = self.0;
        if a.reason == Reason::Split {
            for s in steps.iter_mut().filter(|s| s.kind == "score") {
                s.passed = s.variant == *a.variant.key;
            }
        }
        steps
    }
}
