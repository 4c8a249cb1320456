//! Evaluation of compiled JSONLogic ([`Logic`]) against a request's context.
//!
//! Why our own evaluator rather than a crate: flagd's semantics are those of its Go
//! evaluator and the providers' in-process evaluators, which differ from any one
//! JSONLogic library in details that decide variants (`fractional` sees its
//! arguments already evaluated; `$flagd` is injected into the data; a var path
//! walks into arrays by index). The evaluator also has to compile once per reload
//! and borrow instead of copying on the request path: results are `Cow`s that point
//! into the context or the compiled tree, `fractional` keeps its evaluated
//! arguments on the stack (up to [`INLINE_ENTRIES`]) and hashes through a
//! per-thread scratch buffer, so a typical targeting rule allocates nothing
//! (`tests/flagd_alloc.rs` counts). Semantics follow json-logic-js
//! (truthiness, loose equality, numeric coercion) as flagd's evaluators do.
//!
//! Recursion depth is bounded by the compiled tree (config::flagd::MAX_DEPTH).
//!
//! Over 500 lines on purpose: one `match` over every operator next to the
//! json-logic coercion rules (truthiness, `Number()`, `String()`, `==`) they all
//! share; split across files, the rules would drift from their users.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::fractional::{self, FractionalForm, Picked};
use super::sem_ver;
use crate::snapshot::flagd::{Logic, Op, VarPath};

/// What one evaluation sees besides the current data: the request's context, the
/// injected `$flagd` properties and the `fractional` form.
pub struct Env<'r> {
    /// The evaluation context (`targetingKey` included).
    pub ctx: &'r Map<String, Value>,
    /// `$flagd.flagKey`.
    pub flag_key: &'r Value,
    /// `$flagd.timestamp` (Unix seconds).
    pub timestamp: Value,
    /// Which `fractional` to run.
    pub form: FractionalForm,
}

/// Per-evaluation scratch and findings.
#[derive(Default)]
pub struct State {
    /// Set when a `fractional` chose a distribution entry.
    pub bucketed: bool,
    /// Whether the value the last evaluated node returned is the entry a
    /// `fractional` chose, passed up unchanged (only `if`, `or`, `and` and a
    /// `var` default pass a child's value through). At the root it says whether
    /// the variant came from `fractional` (exposure reason `split`) or from a
    /// branch that merely looked at its result (`targeting_match`).
    pub from_fractional: bool,
}

/// Distribution entries `fractional` holds on the stack; more spill to the heap.
const INLINE_ENTRIES: usize = 8;

/// Scratch bytes kept per thread between `fractional` calls; a larger bucketing
/// value's buffer is shrunk back after use.
const SCRATCH_KEEP: usize = 4096;

thread_local! {
    /// The bucketing bytes (v1/v2 string, v3 CBOR) of the `fractional` being
    /// evaluated: reused, so bucketing allocates nothing once warm.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `fractional` over `vals` with this thread's scratch buffer.
fn bucket<T: std::borrow::Borrow<Value>>(env: &Env<'_>, vals: &[T]) -> Option<Picked> {
    let key = env.flag_key.as_str().unwrap_or_default();
    let tk = env.ctx.get("targetingKey");
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let picked = fractional::evaluate(env.form, vals, key, tk, &mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                buf.clear();
                buf.shrink_to(SCRATCH_KEEP);
            }
            picked
        }
        // Not reachable (arguments are evaluated before the buffer is taken),
        // but a fresh buffer is always correct.
        Err(_) => fractional::evaluate(env.form, vals, key, tk, &mut Vec::new()),
    })
}

/// The data `var` reads: the root (context + `$flagd`) or an item inside
/// map/filter/reduce/all/none/some.
#[derive(Clone, Copy)]
enum Data<'r> {
    Root,
    Item(&'r Value),
}

type V<'r> = Cow<'r, Value>;

static NULL: Value = Value::Null;

/// Evaluates `logic` at the root of the data.
pub fn eval<'r>(logic: &'r Logic, env: &'r Env<'r>, st: &mut State) -> V<'r> {
    ev(logic, env, Data::Root, st)
}

fn ev<'r>(logic: &'r Logic, env: &'r Env<'r>, data: Data<'r>, st: &mut State) -> V<'r> {
    // Pass-through operators leave the flag as their returned child set it;
    // `fractional` sets it once it chose; everything else produces a new value.
    st.from_fractional = false;
    match logic {
        Logic::Lit(v) => Cow::Borrowed(v),
        Logic::Array(items) => {
            let a = items
                .iter()
                .map(|l| ev(l, env, data, st).into_owned())
                .collect();
            st.from_fractional = false;
            Cow::Owned(Value::Array(a))
        }
        Logic::Var { path, default } => match path {
            VarPath::Whole => whole(env, data),
            VarPath::Segments(segs) => match lookup(env, data, segs.iter().map(|s| &**s)) {
                Some(v) => v,
                None => default_of(default, env, data, st),
            },
        },
        Logic::VarDyn { path, default } => {
            let p = ev(path, env, data, st);
            st.from_fractional = false;
            let key = match &*p {
                Value::Null => return whole(env, data),
                Value::String(s) if s.is_empty() => return whole(env, data),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return default_of(default, env, data, st),
            };
            match lookup(env, data, key.split('.')) {
                Some(v) => Cow::Owned(v.into_owned()),
                None => default_of(default, env, data, st),
            }
        }
        Logic::Op { op, args } => {
            let v = op_eval(*op, args, env, data, st);
            if !matches!(op, Op::If | Op::Or | Op::And | Op::Fractional) {
                st.from_fractional = false;
            }
            v
        }
    }
}

fn default_of<'r>(
    d: &'r Option<Box<Logic>>,
    env: &'r Env<'r>,
    data: Data<'r>,
    st: &mut State,
) -> V<'r> {
    match d {
        Some(d) => ev(d, env, data, st),
        None => Cow::Borrowed(&NULL),
    }
}

fn whole<'r>(env: &'r Env<'r>, data: Data<'r>) -> V<'r> {
    match data {
        Data::Item(v) => Cow::Borrowed(v),
        Data::Root => {
            let mut m = env.ctx.clone();
            m.insert("$flagd".into(), flagd_props(env));
            Cow::Owned(Value::Object(m))
        }
    }
}

fn flagd_props(env: &Env<'_>) -> Value {
    let mut m = Map::new();
    m.insert("flagKey".into(), env.flag_key.clone());
    m.insert("timestamp".into(), env.timestamp.clone());
    Value::Object(m)
}

/// Walks a dotted path; `None` when a step is missing (json-logic's "undefined").
fn lookup<'r, 's>(
    env: &'r Env<'r>,
    data: Data<'r>,
    mut segs: impl Iterator<Item = &'s str>,
) -> Option<V<'r>> {
    let first = segs.next()?;
    let mut cur: &'r Value = match data {
        Data::Item(v) => step(v, first)?,
        Data::Root if first == "$flagd" => {
            let Some(second) = segs.next() else {
                return Some(Cow::Owned(flagd_props(env)));
            };
            let v = match second {
                "flagKey" => env.flag_key,
                "timestamp" => &env.timestamp,
                _ => return None,
            };
            return match segs.next() {
                None => Some(Cow::Borrowed(v)),
                Some(_) => None,
            };
        }
        Data::Root => env.ctx.get(first)?,
    };
    for s in segs {
        cur = step(cur, s)?;
    }
    Some(Cow::Borrowed(cur))
}

fn step<'v>(v: &'v Value, seg: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    }
}

/// json-logic truthiness: false, null, 0, NaN, "" and [] are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// JavaScript's `Number(v)`.
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                0.0
            } else {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() || t.contains("nf"))
                    .unwrap_or(f64::NAN)
            }
        }
        Value::Array(a) if a.is_empty() => 0.0,
        Value::Array(a) if a.len() == 1 => to_number(&a[0]),
        _ => f64::NAN,
    }
}

/// A number result as JSON: integral values as integers, non-finite as null.
pub fn num(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript's `String(v)`.
pub fn js_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                Cow::Owned(format!("{f}"))
            }
            _ => Cow::Owned(n.to_string()),
        },
        Value::Array(a) => Cow::Owned(
            a.iter()
                .map(|x| {
                    if x.is_null() {
                        Cow::Borrowed("")
                    } else {
                        js_string(x)
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Object(_) => Cow::Borrowed("[object Object]"),
    }
}

/// `===`.
pub fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `==` (JavaScript abstract equality, arrays compared by their string form).
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    use Value as J;
    match (a, b) {
        (J::Null, J::Null) => true,
        (J::Null, _) | (_, J::Null) => false,
        (J::Number(_), J::Number(_)) | (J::String(_), J::String(_)) | (J::Bool(_), J::Bool(_)) => {
            strict_eq(a, b)
        }
        (J::Bool(_), _) => loose_eq(&num(to_number(a)), b),
        (_, J::Bool(_)) => loose_eq(a, &num(to_number(b))),
        (J::Number(_), J::String(_)) | (J::String(_), J::Number(_)) => to_number(a) == to_number(b),
        (J::Array(_), J::Array(_)) | (J::Object(_), J::Object(_)) => a == b,
        (J::Array(_) | J::Object(_), _) => loose_eq(&J::String(js_string(a).into_owned()), b),
        (_, J::Array(_) | J::Object(_)) => loose_eq(a, &J::String(js_string(b).into_owned())),
    }
}

/// `<` as JavaScript: strings compare as strings, anything else as numbers.
fn less(a: &Value, b: &Value, or_equal: bool) -> bool {
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return if or_equal { x <= y } else { x < y };
    }
    let (x, y) = (to_number(a), to_number(b));
    if or_equal {
        x <= y
    } else {
        x < y
    }
}

fn bool_v<'r>(b: bool) -> V<'r> {
    Cow::Owned(Value::Bool(b))
}

fn op_eval<'r>(
    op: Op,
    args: &'r [Logic],
    env: &'r Env<'r>,
    data: Data<'r>,
    st: &mut State,
) -> V<'r> {
    let arg = |i: usize, st: &mut State| -> V<'r> {
        match args.get(i) {
            Some(l) => ev(l, env, data, st),
            None => Cow::Borrowed(&NULL),
        }
    };
    match op {
        Op::If => {
            let mut i = 0;
            while i + 1 < args.len() {
                if truthy(&ev(&args[i], env, data, st)) {
                    return ev(&args[i + 1], env, data, st);
                }
                i += 2;
            }
            if i < args.len() {
                ev(&args[i], env, data, st)
            } else {
                st.from_fractional = false;
                Cow::Borrowed(&NULL)
            }
        }
        Op::Or | Op::And => {
            let mut last = Cow::Borrowed(&NULL);
            for l in args {
                last = ev(l, env, data, st);
                if truthy(&last) == (op == Op::Or) {
                    return last;
                }
            }
            last
        }
        Op::Not => bool_v(!truthy(&arg(0, st))),
        Op::NotNot => bool_v(truthy(&arg(0, st))),
        Op::Eq | Op::Ne | Op::StrictEq | Op::StrictNe => {
            let (a, b) = (arg(0, st), arg(1, st));
            let eq = if matches!(op, Op::Eq | Op::Ne) {
                loose_eq(&a, &b)
            } else {
                strict_eq(&a, &b)
            };
            bool_v(eq == matches!(op, Op::Eq | Op::StrictEq))
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let or_equal = matches!(op, Op::Le | Op::Ge);
            let (a, b) = (arg(0, st), arg(1, st));
            if matches!(op, Op::Gt | Op::Ge) {
                return bool_v(less(&b, &a, or_equal));
            }
            // Between forms: a < b < c, a <= b <= c.
            if args.len() >= 3 {
                let c = arg(2, st);
                return bool_v(less(&a, &b, or_equal) && less(&b, &c, or_equal));
            }
            bool_v(less(&a, &b, or_equal))
        }
        Op::Max | Op::Min => {
            if args.is_empty() {
                return Cow::Borrowed(&NULL);
            }
            let mut acc = if op == Op::Max {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            for l in args {
                let x = to_number(&ev(l, env, data, st));
                if x.is_nan() {
                    return Cow::Borrowed(&NULL);
                }
                acc = if op == Op::Max {
                    acc.max(x)
                } else {
                    acc.min(x)
                };
            }
            Cow::Owned(num(acc))
        }
        Op::Add | Op::Mul => {
            let mut acc = if op == Op::Add { 0.0 } else { 1.0 };
            for l in args {
                let x = to_number(&ev(l, env, data, st));
                acc = if op == Op::Add { acc + x } else { acc * x };
            }
            Cow::Owned(num(acc))
        }
        Op::Sub => {
            let a = to_number(&arg(0, st));
            if args.len() < 2 {
                return Cow::Owned(num(-a));
            }
            Cow::Owned(num(a - to_number(&arg(1, st))))
        }
        Op::Div => Cow::Owned(num(to_number(&arg(0, st)) / to_number(&arg(1, st)))),
        Op::Mod => Cow::Owned(num(to_number(&arg(0, st)) % to_number(&arg(1, st)))),
        Op::Merge => {
            let mut out = Vec::new();
            for l in args {
                match ev(l, env, data, st).into_owned() {
                    Value::Array(a) => out.extend(a),
                    other => out.push(other),
                }
            }
            Cow::Owned(Value::Array(out))
        }
        Op::In => {
            let (a, b) = (arg(0, st), arg(1, st));
            bool_v(match &*b {
                Value::String(s) => s.contains(&*js_string(&a)),
                Value::Array(items) => items.iter().any(|x| strict_eq(x, &a)),
                _ => false,
            })
        }
        Op::Cat => {
            let mut s = String::new();
            // flagd's Go evaluator (forms v1, v2: diegoholiveira/jsonlogic) writes
            // null as "" and trims the result; the JavaScript and Python
            // evaluators (v3) write "null" and keep spaces.
            let go = env.form != super::FractionalForm::V3;
            for l in args {
                let v = ev(l, env, data, st);
                if !(go && v.is_null()) {
                    s.push_str(&js_string(&v));
                }
            }
            if go {
                s = s.trim().to_owned();
            }
            Cow::Owned(Value::String(s))
        }
        Op::Substr => {
            let src = arg(0, st);
            let chars: Vec<char> = js_string(&src).chars().collect();
            let n = chars.len() as i64;
            let start = to_number(&arg(1, st));
            let start = if start.is_nan() { 0 } else { start as i64 };
            let start = if start < 0 {
                (n + start).max(0)
            } else {
                start.min(n)
            };
            let end = if args.len() >= 3 {
                let len = to_number(&arg(2, st));
                let len = if len.is_nan() { 0 } else { len as i64 };
                if len < 0 {
                    (n + len).max(start)
                } else {
                    (start + len).min(n)
                }
            } else {
                n
            };
            let end = end.max(start);
            Cow::Owned(Value::String(
                chars[start as usize..end as usize].iter().collect(),
            ))
        }
        Op::Missing => {
            let mut keys: Vec<Value> = Vec::new();
            if args.is_empty() {
                return Cow::Owned(Value::Array(keys));
            }
            let first = arg(0, st);
            if let Value::Array(a) = &*first {
                keys.extend(a.iter().cloned());
            } else {
                keys.push(first.into_owned());
                for i in 1..args.len() {
                    keys.push(arg(i, st).into_owned());
                }
            }
            Cow::Owned(Value::Array(missing(env, data, keys)))
        }
        Op::MissingSome => {
            let need = to_number(&arg(0, st));
            let keys = match arg(1, st).into_owned() {
                Value::Array(a) => a,
                other => vec![other],
            };
            let total = keys.len();
            let miss = missing(env, data, keys);
            if (total - miss.len()) as f64 >= need {
                Cow::Owned(Value::Array(Vec::new()))
            } else {
                Cow::Owned(Value::Array(miss))
            }
        }
        Op::Map | Op::Filter | Op::All | Op::None | Op::Some => {
            let list = arg(0, st);
            let Value::Array(items) = &*list else {
                return match op {
                    Op::Map | Op::Filter => Cow::Owned(Value::Array(Vec::new())),
                    Op::None => bool_v(true),
                    _ => bool_v(false),
                };
            };
            let body = &args[1];
            match op {
                Op::Map => Cow::Owned(Value::Array(
                    items.iter().map(|it| ev_item(body, env, it, st)).collect(),
                )),
                Op::Filter => {
                    let mut out = Vec::new();
                    for it in items {
                        if truthy(&ev_item(body, env, it, st)) {
                            out.push(it.clone());
                        }
                    }
                    Cow::Owned(Value::Array(out))
                }
                Op::All => {
                    if items.is_empty() {
                        return bool_v(false);
                    }
                    bool_v(items.iter().all(|it| truthy(&ev_item(body, env, it, st))))
                }
                Op::Some => bool_v(items.iter().any(|it| truthy(&ev_item(body, env, it, st)))),
                _ => bool_v(!items.iter().any(|it| truthy(&ev_item(body, env, it, st)))),
            }
        }
        Op::Reduce => {
            let list = arg(0, st);
            let mut acc = arg(2, st).into_owned();
            let Value::Array(items) = &*list else {
                return Cow::Owned(acc);
            };
            for it in items {
                let mut m = Map::new();
                m.insert("current".into(), it.clone());
                m.insert("accumulator".into(), acc);
                let scope = Value::Object(m);
                acc = ev_item(&args[1], env, &scope, st);
            }
            Cow::Owned(acc)
        }
        Op::Fractional => {
            let vals: smallvec::SmallVec<[V<'r>; INLINE_ENTRIES]> =
                args.iter().map(|l| ev(l, env, data, st)).collect();
            st.from_fractional = false;
            match bucket(env, &vals) {
                None => Cow::Borrowed(&NULL),
                Some(Picked::EmptyString) => Cow::Owned(Value::String(String::new())),
                Some(Picked::Entry(i)) => {
                    st.bucketed = true;
                    st.from_fractional = true;
                    // Borrow the chosen name when the entry is a literal in the tree.
                    let mut vals = vals;
                    match vals.swap_remove(i) {
                        Cow::Borrowed(v) => Cow::Borrowed(v.get(0).unwrap_or(&NULL)),
                        Cow::Owned(Value::Array(mut a)) if !a.is_empty() => {
                            Cow::Owned(a.swap_remove(0))
                        }
                        Cow::Owned(_) => Cow::Borrowed(&NULL),
                    }
                }
            }
        }
        Op::SemVer => {
            if args.len() != 3 {
                return Cow::Borrowed(&NULL);
            }
            let (a, o, b) = (arg(0, st), arg(1, st), arg(2, st));
            sem_ver::sem_ver(&a, &o, &b).map_or(Cow::Borrowed(&NULL), bool_v)
        }
        Op::StartsWith | Op::EndsWith => {
            if args.len() != 2 {
                return Cow::Borrowed(&NULL);
            }
            let (a, b) = (arg(0, st), arg(1, st));
            sem_ver::string_affix(&a, &b, op == Op::EndsWith).map_or(Cow::Borrowed(&NULL), bool_v)
        }
    }
}

/// Evaluates `body` with `item` as the data (inside map/filter/...); owned result.
fn ev_item(body: &Logic, env: &Env<'_>, item: &Value, st: &mut State) -> Value {
    ev(body, env, Data::Item(item), st).into_owned()
}

/// The keys whose value is missing, null or "" (json-logic's `missing`).
fn missing(env: &Env<'_>, data: Data<'_>, keys: Vec<Value>) -> Vec<Value> {
    keys.into_iter()
        .filter(|k| {
            let path = js_string(k).into_owned();
            match lookup(env, data, path.split('.')) {
                None => true,
                Some(v) => {
                    matches!(&*v, Value::Null) || matches!(&*v, Value::String(s) if s.is_empty())
                }
            }
        })
        .collect()
}
