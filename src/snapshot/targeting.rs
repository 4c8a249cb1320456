//! Targeting rules compiled for evaluation: operands parsed, regexes built and
//! segments inlined once, so matching a unit allocates nothing.

use std::cmp::Ordering;

use crate::config::{Op, Rule, Targeting};
use crate::engine::context::{Attr, Context, Words};

/// A scalar operand, pre-parsed into every form a comparison may need, so a
/// match compares a number, a boolean or a string, never formats or parses.
#[derive(Debug, Clone)]
struct Scalar {
    text: Box<str>,
    /// `text` split into the words an equality test compares, inline in the
    /// condition: the test loads only the attribute's bytes.
    words: Words,
    num: Option<f64>,
    /// `Some(b)` when the text is exactly `true` / `false`.
    boolean: Option<bool>,
    /// Whether the text is exactly `null`.
    null: bool,
}

impl Scalar {
    fn new(text: &str) -> Scalar {
        Scalar {
            text: text.into(),
            words: Words::new(text.as_bytes()),
            num: text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            boolean: match text {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            null: text == "null",
        }
    }

    /// Does `attr`'s string form equal this operand? Numbers compare numerically,
    /// booleans as `true` / `false`. Inlined into evaluation: called, it cost
    /// a copy of the attribute to the stack and a call per condition.
    #[inline(always)]
    fn equals(&self, attr: Attr<'_>) -> bool {
        match attr {
            Attr::Str(s) => self.words.same(s.as_bytes(), || self.text.as_bytes()),
            Attr::Num(n) => self.num == Some(n),
            Attr::Bool(b) => self.boolean == Some(b),
            Attr::Null => self.null,
            Attr::Other => false,
        }
    }
}

/// An ordering test, as data rather than a function pointer: it compiles to a
/// compare instead of an indirect call, and two conditions can be compared for
/// sharing (see [`Cond::memo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A comparison's tag in [`Cond::sharing_key`].
fn cmp_tag(c: Cmp) -> &'static str {
    match c {
        Cmp::Lt => "lt",
        Cmp::Le => "le",
        Cmp::Gt => "gt",
        Cmp::Ge => "ge",
        Cmp::Eq => "eq",
    }
}

impl Cmp {
    #[inline]
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Lt => o.is_lt(),
            Cmp::Le => o.is_le(),
            Cmp::Gt => o.is_gt(),
            Cmp::Ge => o.is_ge(),
            Cmp::Eq => o.is_eq(),
        }
    }
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Scalar),
    In(Vec<Scalar>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
    Num(Cmp, f64),
    Semver(Cmp, semver::Version),
    Regex(regex::Regex),
    Exists,
}

/// One compiled condition: `attribute test`, possibly negated.
#[derive(Debug, Clone)]
pub struct Cond {
    /// Where it came from, e.g. `include[0]`, `rules[2]`, `segment:beta/rules[0]`.
    pub origin: Box<str>,
    /// The rule as written, for `Explain`.
    pub text: Box<str>,
    /// The attribute it reads.
    pub attribute: Box<str>,
    test: Test,
    negate: bool,
    /// This condition's slot in a per-call memo of condition results
    /// ([`CondMemo`]), shared by every experiment with an identical condition;
    /// `usize::MAX` when it has none (used once, or past [`COND_MEMO`]).
    pub(crate) memo: usize,
    /// The position of `attribute` in its experiment's gathered attributes
    /// ([`crate::engine::reads::Reads`]); `usize::MAX` when it is not gathered.
    pub(crate) read: usize,
    /// See [`Cond::sharing_key`].
    sharing: Box<str>,
}

/// Slots in the per-call condition memo: the most shared conditions get one.
/// Fixed, so a call's memo lives on the stack whatever the config holds.
pub const COND_MEMO: usize = 64;

impl Cond {
    /// A key equal for two conditions exactly when they test the same attribute
    /// the same way (same test, same operands: a scalar's text, which fixes its
    /// parsed forms; a number's bits; a version's canonical form; a regex's
    /// pattern), so they always give the same result on one context. Every
    /// string is length-prefixed, so no two different conditions share a key.
    pub(crate) fn sharing_key(&self) -> &str {
        &self.sharing
    }

    /// Computes [`Cond::sharing_key`] once, when the condition is compiled
    /// (every reload looks it up for every condition of every experiment), by
    /// hand: the `Debug` forms it was made of were most of compiling targeting.
    fn with_sharing_key(mut self) -> Cond {
        let mut k = String::with_capacity(self.attribute.len() + 32);
        let part = |k: &mut String, s: &str| {
            k.push_str(itoa::Buffer::new().format(s.len()));
            k.push(':');
            k.push_str(s);
        };
        part(&mut k, &self.attribute);
        k.push_str(if self.negate { "!" } else { "=" });
        match &self.test {
            Test::Eq(v) => {
                k.push_str("eq");
                part(&mut k, &v.text);
            }
            Test::In(vs) => {
                k.push_str("in");
                k.push_str(itoa::Buffer::new().format(vs.len()));
                for v in vs {
                    part(&mut k, &v.text);
                }
            }
            Test::StartsWith(v) => {
                k.push_str("sw");
                part(&mut k, v);
            }
            Test::EndsWith(v) => {
                k.push_str("ew");
                part(&mut k, v);
            }
            Test::Contains(v) => {
                k.push_str("ct");
                part(&mut k, v);
            }
            Test::Num(c, n) => {
                k.push_str(cmp_tag(*c));
                k.push('n');
                k.push_str(itoa::Buffer::new().format(n.to_bits()));
            }
            Test::Semver(c, v) => {
                k.push_str(cmp_tag(*c));
                k.push('v');
                part(&mut k, &v.to_string());
            }
            Test::Regex(r) => {
                k.push_str("re");
                part(&mut k, r.as_str());
            }
            Test::Exists => k.push_str("ex"),
        }
        self.sharing = k.into();
        self
    }

    /// Whether the unit's context satisfies this condition, and the value it saw.
    #[inline]
    pub fn eval<'c, C: Context + ?Sized>(&self, ctx: &'c C) -> (bool, Option<Attr<'c>>) {
        let seen = ctx.get(&self.attribute);
        (self.holds(seen), seen)
    }

    /// Whether the condition holds when its attribute is `seen` (`None`: absent).
    /// Equality, the most common test (every `include` and `exclude`), is
    /// tested here inline; the others call [`test`].
    #[inline(always)]
    pub fn holds(&self, seen: Option<Attr<'_>>) -> bool {
        let hit = match (seen, &self.test) {
            (None, _) => false,
            (Some(a), Test::Eq(s)) => s.equals(a),
            (Some(a), t) => test(t, a),
        };
        hit != self.negate
    }
}

fn string_form(a: Attr<'_>) -> Option<&str> {
    match a {
        Attr::Str(s) => Some(s),
        Attr::Bool(true) => Some("true"),
        Attr::Bool(false) => Some("false"),
        _ => None,
    }
}

fn test(t: &Test, a: Attr<'_>) -> bool {
    match t {
        Test::Eq(s) => s.equals(a),
        Test::In(list) => list.iter().any(|s| s.equals(a)),
        Test::StartsWith(p) => string_form(a).is_some_and(|s| s.starts_with(&**p)),
        Test::EndsWith(p) => string_form(a).is_some_and(|s| s.ends_with(&**p)),
        Test::Contains(p) => string_form(a).is_some_and(|s| s.contains(&**p)),
        Test::Num(cmp, rhs) => {
            let lhs = match a {
                Attr::Num(n) => Some(n),
                Attr::Str(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            lhs.and_then(|l| l.partial_cmp(rhs))
                .is_some_and(|o| cmp.holds(o))
        }
        Test::Semver(cmp, rhs) => match a {
            Attr::Str(s) => parse_semver(s).is_some_and(|v| cmp.holds(v.cmp_precedence(rhs))),
            _ => false,
        },
        Test::Regex(re) => match a {
            Attr::Str(s) => re.is_match(s),
            Attr::Bool(b) => re.is_match(if b { "true" } else { "false" }),
            _ => false,
        },
        Test::Exists => !matches!(a, Attr::Null),
    }
}

fn parse_semver(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    semver::Version::parse(s).ok()
}

/// The compiled targeting of one experiment: every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct CompiledTargeting {
    /// Conditions in evaluation order. Shared between the snapshots that keep
    /// this experiment (see `super::reuse`); a reload whose memo slots differ
    /// gives the experiment a copy (`super::compile::index_shared_conds`).
    pub conds: std::sync::Arc<[Cond]>,
}

/// Errors while compiling targeting: (field path, message).
pub type RuleError = (String, String);

fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn split_attr_value(s: &str) -> Option<(&str, &str)> {
    let (a, v) = s.split_once(':')?;
    (!a.is_empty()).then_some((a, v))
}

impl CompiledTargeting {
    /// Compiles `t`, inlining the named `segments`. Errors carry field paths
    /// relative to the experiment.
    pub fn compile(
        t: &Targeting,
        segments: &std::collections::BTreeMap<String, Targeting>,
        field: &str,
    ) -> Result<CompiledTargeting, Vec<RuleError>> {
        let mut conds = Vec::new();
        let mut errors = Vec::new();
        compile_into(t, field, "", &mut conds, &mut errors);
        for (i, name) in t.segments.iter().enumerate() {
            match segments.get(name) {
                None => errors.push((
                    format!("{field}.segments[{i}]"),
                    format!("unknown segment `{name}`"),
                )),
                Some(seg) if !seg.segments.is_empty() => errors.push((
                    format!("{field}.segments[{i}]"),
                    format!("segment `{name}` references other segments; segments cannot nest"),
                )),
                Some(seg) => compile_into(
                    seg,
                    &format!("segments.{name}"),
                    &format!("segment:{name}/"),
                    &mut conds,
                    &mut errors,
                ),
            }
        }
        if errors.is_empty() {
            Ok(CompiledTargeting {
                conds: conds.into(),
            })
        } else {
            Err(errors)
        }
    }
}

/// The pieces joined in one allocation: the explanation strings of every
/// condition of every experiment are built on each reload, and `format!` cost
/// most of compiling targeting (callgrind, `benches/tools/reload_time.rs`).
fn concat(parts: &[&str]) -> Box<str> {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s.into_boxed_str()
}

/// The `attribute:value` conditions of `include` (or, `negate`d, `exclude`):
/// `at` is the field path and origin prefix of the targeting they belong to.
fn eq_conds(
    list: &[String],
    negate: bool,
    (field, origin_prefix): (&str, &str),
    conds: &mut Vec<Cond>,
    errors: &mut Vec<RuleError>,
) {
    let (kind, op) = if negate {
        ("exclude", " != ")
    } else {
        ("include", " == ")
    };
    for (i, s) in list.iter().enumerate() {
        match split_attr_value(s) {
            Some((a, v)) => conds.push(
                Cond {
                    origin: concat(&[origin_prefix, kind, "[", itoa::Buffer::new().format(i), "]"]),
                    text: concat(&[a, op, v]),
                    attribute: a.into(),
                    test: Test::Eq(Scalar::new(v)),
                    negate,
                    memo: usize::MAX,
                    read: usize::MAX,
                    sharing: Box::default(),
                }
                .with_sharing_key(),
            ),
            None => errors.push((
                format!("{field}.{kind}[{i}]"),
                format!("expected `attribute:value`, got {s:?}"),
            )),
        }
    }
}

fn compile_into(
    t: &Targeting,
    field: &str,
    origin_prefix: &str,
    conds: &mut Vec<Cond>,
    errors: &mut Vec<RuleError>,
) {
    eq_conds(&t.include, false, (field, origin_prefix), conds, errors);
    for (i, r) in t.rules.iter().enumerate() {
        match compile_rule(r) {
            Ok(mut c) => {
                c.origin = concat(&[origin_prefix, "rules[", itoa::Buffer::new().format(i), "]"]);
                conds.push(c)
            }
            Err(m) => errors.push((format!("{field}.rules[{i}]"), m)),
        }
    }
    eq_conds(&t.exclude, true, (field, origin_prefix), conds, errors);
}

fn compile_rule(r: &Rule) -> Result<Cond, String> {
    if r.attribute.is_empty() {
        return Err("`attribute` must not be empty".into());
    }
    let one = |what: &str| -> Result<String, String> {
        match &r.value {
            Some(v) => scalar_text(v)
                .ok_or_else(|| format!("`value` must be a {what} for `{:?}`", r.op).to_lowercase()),
            None => Err(format!("`value` is required for this operator ({what})")),
        }
    };
    let num = || -> Result<f64, String> {
        match &r.value {
            Some(serde_json::Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| "`value` must be a finite number".to_string()),
            Some(serde_json::Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| format!("`value` {s:?} is not a number")),
            _ => Err("`value` must be a number".into()),
        }
    };
    let ver = || -> Result<semver::Version, String> {
        let s = one("semantic version string")?;
        parse_semver(&s)
            .ok_or_else(|| format!("`value` {s:?} is not a semantic version (e.g. 1.2.3)"))
    };
    let (test, negate, text) = match r.op {
        Op::Equals | Op::NotEquals => {
            let v = one("string, number or boolean")?;
            let neg = r.op == Op::NotEquals;
            (
                Test::Eq(Scalar::new(&v)),
                neg,
                format!("{} {} {v}", r.attribute, if neg { "!=" } else { "==" }),
            )
        }
        Op::In | Op::NotIn => {
            let list = match &r.value {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|v| scalar_text(v).map(|s| Scalar::new(&s)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("`value` must be a list of strings, numbers or booleans")?,
                _ => return Err("`value` must be a list for `in` / `not_in`".into()),
            };
            let neg = r.op == Op::NotIn;
            let shown: Vec<&str> = list.iter().map(|s| &*s.text).collect();
            (
                Test::In(list.clone()),
                neg,
                format!(
                    "{} {} [{}]",
                    r.attribute,
                    if neg { "not in" } else { "in" },
                    shown.join(", ")
                ),
            )
        }
        Op::StartsWith => {
            let v = one("string")?;
            (
                Test::StartsWith(v.clone().into()),
                false,
                format!("{} starts with {v:?}", r.attribute),
            )
        }
        Op::EndsWith => {
            let v = one("string")?;
            (
                Test::EndsWith(v.clone().into()),
                false,
                format!("{} ends with {v:?}", r.attribute),
            )
        }
        Op::Contains => {
            let v = one("string")?;
            (
                Test::Contains(v.clone().into()),
                false,
                format!("{} contains {v:?}", r.attribute),
            )
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let n = num()?;
            let (f, sym) = match r.op {
                Op::Lt => (Cmp::Lt, "<"),
                Op::Lte => (Cmp::Le, "<="),
                Op::Gt => (Cmp::Gt, ">"),
                _ => (Cmp::Ge, ">="),
            };
            (Test::Num(f, n), false, format!("{} {sym} {n}", r.attribute))
        }
        Op::SemverEq | Op::SemverLt | Op::SemverLte | Op::SemverGt | Op::SemverGte => {
            let v = ver()?;
            let (f, sym) = match r.op {
                Op::SemverEq => (Cmp::Eq, "=="),
                Op::SemverLt => (Cmp::Lt, "<"),
                Op::SemverLte => (Cmp::Le, "<="),
                Op::SemverGt => (Cmp::Gt, ">"),
                _ => (Cmp::Ge, ">="),
            };
            let text = format!("{} {sym} semver {v}", r.attribute);
            (Test::Semver(f, v), false, text)
        }
        Op::Matches => {
            let v = one("regular expression string")?;
            let re = regex::RegexBuilder::new(&v)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("invalid regular expression: {e}"))?;
            (
                Test::Regex(re),
                false,
                format!("{} matches /{v}/", r.attribute),
            )
        }
        Op::Exists | Op::NotExists => {
            if r.value.is_some() {
                return Err("`value` is not used by `exists` / `not_exists`; remove it".into());
            }
            let neg = r.op == Op::NotExists;
            (
                Test::Exists,
                neg,
                format!(
                    "{} {}",
                    r.attribute,
                    if neg { "is absent" } else { "is present" }
                ),
            )
        }
    };
    Ok(Cond {
        origin: "".into(),
        text: text.into(),
        attribute: r.attribute.as_str().into(),
        test,
        negate,
        memo: usize::MAX,
        read: usize::MAX,
        sharing: Box::default(),
    }
    .with_sharing_key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    fn rule(attr: &str, op: Op, value: Option<serde_json::Value>) -> Cond {
        compile_rule(&Rule {
            attribute: attr.into(),
            op,
            value,
        })
        .unwrap()
    }

    #[test]
    fn sharing_keys_are_equal_exactly_for_conditions_that_test_the_same() {
        let key = |c: Cond| c.sharing_key().to_owned();
        let same = [
            (
                rule("plan", Op::Equals, Some(json!("pro"))),
                rule("plan", Op::Equals, Some(json!("pro"))),
            ),
            (
                rule("n", Op::Gt, Some(json!(1))),
                rule("n", Op::Gt, Some(json!(1.0))),
            ),
            (
                rule("v", Op::SemverGt, Some(json!("1.2.3"))),
                rule("v", Op::SemverGt, Some(json!("1.2.3"))),
            ),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b));
        }
        let all = [
            rule("plan", Op::Equals, Some(json!("pro"))),
            rule("plan", Op::NotEquals, Some(json!("pro"))),
            rule("plan", Op::Equals, Some(json!("pr"))),
            rule("plan2", Op::Equals, Some(json!("pro"))),
            rule("plan", Op::In, Some(json!(["a", "b"]))),
            rule("plan", Op::In, Some(json!(["a:1", "b"]))),
            rule("plan", Op::In, Some(json!(["a"]))),
            rule("plan", Op::StartsWith, Some(json!("pro"))),
            rule("plan", Op::EndsWith, Some(json!("pro"))),
            rule("plan", Op::Contains, Some(json!("pro"))),
            rule("n", Op::Gt, Some(json!(1))),
            rule("n", Op::Gte, Some(json!(1))),
            rule("n", Op::Gt, Some(json!(2))),
            rule("v", Op::SemverGt, Some(json!("1.2.3"))),
            rule("v", Op::SemverGt, Some(json!("1.2.3-rc.1"))),
            rule("v", Op::SemverLt, Some(json!("1.2.3"))),
            rule("plan", Op::Matches, Some(json!("^p"))),
            rule("plan", Op::Matches, Some(json!("^q"))),
            rule("plan", Op::Exists, None),
            rule("plan", Op::NotExists, None),
        ];
        let keys: std::collections::BTreeSet<String> = all.into_iter().map(key).collect();
        assert_eq!(keys.len(), 20, "{keys:#?}");
    }

    #[test]
    fn template_include_exclude_compare_string_forms() {
        let t = Targeting {
            include: vec!["region:US".into(), "accountType:free".into()],
            exclude: vec!["internal:true".into(), "bot:true".into()],
            ..Default::default()
        };
        let c = CompiledTargeting::compile(&t, &Default::default(), "targeting").unwrap();
        let all = |v| {
            let m = ctx(v);
            c.conds.iter().all(|cd| cd.eval(&m).0)
        };
        assert!(all(json!({"region":"US","accountType":"free"})));
        assert!(all(
            json!({"region":"US","accountType":"free","internal":false})
        ));
        assert!(!all(
            json!({"region":"US","accountType":"free","internal":true})
        ));
        assert!(!all(
            json!({"region":"US","accountType":"free","bot":"true"})
        ));
        assert!(!all(json!({"region":"EU","accountType":"free"})));
        assert!(!all(json!({"accountType":"free"})));
    }

    #[test]
    fn operators() {
        let c = ctx(json!({"v":"2.10.0","n":7,"s":"hello-world","b":true,"z":null}));
        assert!(rule("v", Op::SemverGt, Some(json!("2.9.1"))).eval(&c).0);
        assert!(!rule("v", Op::SemverLt, Some(json!("v2.9.1"))).eval(&c).0);
        assert!(rule("n", Op::Gte, Some(json!(7))).eval(&c).0);
        assert!(rule("n", Op::Lt, Some(json!("7.5"))).eval(&c).0);
        assert!(rule("n", Op::In, Some(json!([1, 7]))).eval(&c).0);
        assert!(rule("n", Op::NotIn, Some(json!(["1"]))).eval(&c).0);
        assert!(rule("s", Op::StartsWith, Some(json!("hello"))).eval(&c).0);
        assert!(rule("s", Op::EndsWith, Some(json!("world"))).eval(&c).0);
        assert!(rule("s", Op::Contains, Some(json!("o-w"))).eval(&c).0);
        assert!(rule("s", Op::Matches, Some(json!("^h.*d$"))).eval(&c).0);
        assert!(rule("b", Op::Equals, Some(json!(true))).eval(&c).0);
        assert!(rule("b", Op::NotEquals, Some(json!("false"))).eval(&c).0);
        assert!(rule("s", Op::Exists, None).eval(&c).0);
        assert!(rule("z", Op::NotExists, None).eval(&c).0);
        assert!(rule("missing", Op::NotExists, None).eval(&c).0);
        assert!(!rule("missing", Op::Gt, Some(json!(1))).eval(&c).0);
        assert!(rule("missing", Op::NotEquals, Some(json!("x"))).eval(&c).0);
    }

    #[test]
    fn bad_operands_are_errors() {
        let bad = |op, v| {
            compile_rule(&Rule {
                attribute: "a".into(),
                op,
                value: v,
            })
            .is_err()
        };
        assert!(bad(Op::Matches, Some(json!("("))));
        assert!(bad(Op::SemverGt, Some(json!("one"))));
        assert!(bad(Op::Gt, Some(json!("x"))));
        assert!(bad(Op::In, Some(json!("x"))));
        assert!(bad(Op::Exists, Some(json!(1))));
        assert!(bad(Op::Equals, None));
    }

    #[test]
    fn segments_inline_and_unknown_ones_fail() {
        let mut segs = std::collections::BTreeMap::new();
        segs.insert(
            "beta".to_string(),
            Targeting {
                include: vec!["beta:true".into()],
                ..Default::default()
            },
        );
        let t = Targeting {
            segments: vec!["beta".into()],
            ..Default::default()
        };
        let c = CompiledTargeting::compile(&t, &segs, "targeting").unwrap();
        assert_eq!(&*c.conds[0].origin, "segment:beta/include[0]");
        let t = Targeting {
            segments: vec!["nope".into()],
            ..Default::default()
        };
        let e = CompiledTargeting::compile(&t, &segs, "targeting").unwrap_err();
        assert_eq!(e[0].0, "targeting.segments[0]");
    }
}
