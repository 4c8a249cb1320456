//! Compiled targeting shared by the experiments of one compile that target
//! alike.
//!
//! Many experiments of a config carry the same targeting (`region:US`,
//! `internal:true`, ...) and the same unit attribute. Compiling it is the same
//! work each time, and it was a third of compiling an experiment, most of it
//! small allocations (five strings per condition; callgrind,
//! `benches/tools/reload_time.rs`). A condition's compiled form depends only on
//! the targeting as written and the document's segments (one set for the whole
//! compile), and the attribute list evaluation gathers ([`Reads`]) only on that
//! and the unit attribute; the memo slots are set later, for the whole snapshot
//! (`super::compile::index_shared_conds`). So an experiment whose targeting and
//! unit attribute equal an earlier one's in the same compile takes that one's
//! conditions (the same `Arc`, a reference count) and a copy of its `Reads`:
//! the result is equal, field for field, to compiling it again.
//!
//! Equal means written the same: `Targeting`'s `==` takes `0.0` and `-0.0`
//! for one operand, which compile to different conditions (`in [-0.0]` tests
//! the text `-0.0`), so operands are compared by their exact number form
//! ([`same_targeting`]).
//!
//! Only targeting that compiled without errors is kept, so errors are found
//! and reported exactly as before. The cache is local to one pass over the
//! experiments (each compile thread has its own) and holds at most
//! [`ENTRIES`] targetings, replaced in turn: a lookup compares with each, and a
//! config whose targetings all differ pays those comparisons and nothing else.

use serde_json::Value;

use crate::config::{Rule, Targeting};
use crate::engine::reads::Reads;

use super::targeting::CompiledTargeting;

/// How many distinct targetings one pass keeps.
const ENTRIES: usize = 16;

/// Targetings compiled earlier in this pass, with what they compiled to.
pub(super) struct TargetingCache<'a> {
    entries: Vec<Entry<'a>>,
    /// At most this many entries: [`ENTRIES`], or 0 when sharing is off.
    limit: usize,
    /// The entry the next new targeting replaces once full.
    next: usize,
}

struct Entry<'a> {
    targeting: &'a Targeting,
    hash_key: &'a str,
    compiled: CompiledTargeting,
    reads: Reads,
}

impl<'a> TargetingCache<'a> {
    /// An empty cache; with `share` false it keeps nothing, so every
    /// experiment's targeting compiles on its own.
    pub(super) fn new(share: bool) -> Self {
        TargetingCache {
            entries: Vec::new(),
            limit: if share { ENTRIES } else { 0 },
            next: 0,
        }
    }

    /// What `targeting` with unit attribute `hash_key` compiled to earlier in
    /// this pass, if it did.
    pub(super) fn get(
        &self,
        targeting: &Targeting,
        hash_key: &str,
    ) -> Option<(CompiledTargeting, Reads)> {
        self.entries
            .iter()
            .find(|e| e.hash_key == hash_key && same_targeting(e.targeting, targeting))
            .map(|e| (e.compiled.clone(), e.reads.clone()))
    }

    /// Keeps what `targeting` with unit attribute `hash_key` compiled to
    /// (without errors).
    pub(super) fn put(
        &mut self,
        targeting: &'a Targeting,
        hash_key: &'a str,
        compiled: &CompiledTargeting,
        reads: &Reads,
    ) {
        if self.limit == 0 {
            return;
        }
        let entry = Entry {
            targeting,
            hash_key,
            compiled: compiled.clone(),
            reads: reads.clone(),
        };
        if self.entries.len() < self.limit {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % self.limit;
        }
    }
}

/// Whether `a` and `b` compile to the same conditions: equal field by field,
/// numbers by their exact form (see [`same_value`]).
fn same_targeting(a: &Targeting, b: &Targeting) -> bool {
    let Targeting {
        include,
        exclude,
        rules,
        segments,
    } = a;
    *include == b.include
        && *exclude == b.exclude
        && *segments == b.segments
        && rules.len() == b.rules.len()
        && rules.iter().zip(&b.rules).all(|(x, y)| same_rule(x, y))
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    let Rule {
        attribute,
        op,
        value,
    } = a;
    *attribute == b.attribute
        && *op == b.op
        && match (value, &b.value) {
            (Some(x), Some(y)) => same_value(x, y),
            (x, y) => x.is_none() && y.is_none(),
        }
}

/// `==`, except that numbers must have the same form (integer or float) and,
/// for floats, the same bits: `0.0 == -0.0` under `==`, but they print apart.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.is_f64() == y.is_f64()
                && x.as_u64() == y.as_u64()
                && x.as_i64() == y.as_i64()
                && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, x), (ky, y))| kx == ky && same_value(x, y))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(value: Value) -> Targeting {
        Targeting {
            rules: vec![Rule {
                attribute: "n".into(),
                op: crate::config::Op::In,
                value: Some(value),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn numbers_that_print_apart_are_not_the_same_targeting() {
        let (zero, minus): (Value, Value) = (
            serde_json::from_str("[0.0]").unwrap(),
            serde_json::from_str("[-0.0]").unwrap(),
        );
        assert_eq!(rules(zero.clone()), rules(minus.clone()), "`==` mixes them");
        assert!(!same_targeting(&rules(zero.clone()), &rules(minus)));
        assert!(!same_targeting(&rules(json!([1])), &rules(json!([1.0]))));
        assert!(same_targeting(&rules(zero.clone()), &rules(zero)));
        assert!(same_targeting(
            &rules(json!([{"a": [1, "x"]}])),
            &rules(json!([{"a": [1, "x"]}]))
        ));
        assert!(!same_targeting(
            &rules(json!([{"a": 1}])),
            &rules(json!([{"b": 1}]))
        ));
    }
}
