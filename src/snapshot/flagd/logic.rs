//! JSONLogic compiled once per reload into a tree the engine walks.
//!
//! Compiling resolves each operator name to an [`Op`], splits literal `var` paths
//! into segments and rejects what can never evaluate (unknown operators, wrong
//! argument shapes that no context can fix), so a request never parses JSON or
//! looks up strings in an operator table.
//!
//! One deliberate difference from flagd: an unknown operator is a load error here,
//! where flagd loads the flag and fails each evaluation with PARSE_ERROR. A typo then
//! shows up in `cohortd validate` instead of in production.

use serde_json::Value;

use crate::config::flagd::MAX_DEPTH;

/// A JSONLogic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    If,
    Eq,
    StrictEq,
    Ne,
    StrictNe,
    Not,
    NotNot,
    Or,
    And,
    Lt,
    Le,
    Gt,
    Ge,
    Max,
    Min,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Map,
    Filter,
    Reduce,
    All,
    None,
    Some,
    Merge,
    In,
    Cat,
    Substr,
    Missing,
    MissingSome,
    /// flagd: deterministic weighted bucketing.
    Fractional,
    /// flagd: semantic version comparison.
    SemVer,
    /// flagd: string prefix test.
    StartsWith,
    /// flagd: string suffix test.
    EndsWith,
}

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "if" | "?:" => Op::If,
            "==" => Op::Eq,
            "===" => Op::StrictEq,
            "!=" => Op::Ne,
            "!==" => Op::StrictNe,
            "!" => Op::Not,
            "!!" => Op::NotNot,
            "or" => Op::Or,
            "and" => Op::And,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "max" => Op::Max,
            "min" => Op::Min,
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "map" => Op::Map,
            "filter" => Op::Filter,
            "reduce" => Op::Reduce,
            "all" => Op::All,
            "none" => Op::None,
            "some" => Op::Some,
            "merge" => Op::Merge,
            "in" => Op::In,
            "cat" => Op::Cat,
            "substr" => Op::Substr,
            "missing" => Op::Missing,
            "missing_some" => Op::MissingSome,
            "fractional" => Op::Fractional,
            "sem_ver" => Op::SemVer,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            _ => return None,
        })
    }
}

/// A `var` path known at load time.
#[derive(Debug, Clone, PartialEq)]
pub enum VarPath {
    /// `""`, `[]` or null: the whole data object.
    Whole,
    /// Dotted path split into segments.
    Segments(Box<[Box<str>]>),
}

/// A compiled JSONLogic expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Logic {
    /// A literal value (scalars, objects that are not operations).
    Lit(Value),
    /// An array whose elements are evaluated.
    Array(Box<[Logic]>),
    /// `var` with a literal path.
    Var {
        /// Path into the data.
        path: VarPath,
        /// Returned when the path does not resolve.
        default: Option<Box<Logic>>,
    },
    /// `var` whose path is itself computed.
    VarDyn {
        /// Expression giving the path.
        path: Box<Logic>,
        /// Returned when the path does not resolve.
        default: Option<Box<Logic>>,
    },
    /// Any other operator and its argument expressions.
    Op {
        /// The operator.
        op: Op,
        /// Its arguments (a non-array argument is one argument).
        args: Box<[Logic]>,
    },
}

/// Why a targeting rule cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LogicError {
    /// JSON path of the offending node inside `targeting`, e.g. `if[0].in[1]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Logic {
    /// Compiles a JSONLogic value.
    pub fn compile(v: &Value) -> Result<Logic, LogicError> {
        compile_at(v, &mut String::new(), 0)
    }

    /// Whether this expression contains a `fractional` anywhere.
    pub fn uses(&self, wanted: Op) -> bool {
        match self {
            Logic::Lit(_) => false,
            Logic::Array(items) => items.iter().any(|l| l.uses(wanted)),
            Logic::Var { default, .. } => default.as_ref().is_some_and(|d| d.uses(wanted)),
            Logic::VarDyn { path, default } => {
                path.uses(wanted) || default.as_ref().is_some_and(|d| d.uses(wanted))
            }
            Logic::Op { op, args } => *op == wanted || args.iter().any(|l| l.uses(wanted)),
        }
    }
}

fn err(path: &str, message: impl Into<String>) -> LogicError {
    LogicError {
        path: if path.is_empty() {
            "targeting".into()
        } else {
            format!("targeting.{path}")
        },
        message: message.into(),
    }
}

fn compile_at(v: &Value, path: &mut String, depth: usize) -> Result<Logic, LogicError> {
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(compile_at(item, path, depth + 1)?);
                path.truncate(len);
            }
            // A literal array stays a literal: evaluating it then borrows, never builds.
            if out.iter().all(|l| matches!(l, Logic::Lit(_))) {
                return Ok(Logic::Lit(v.clone()));
            }
            Ok(Logic::Array(out.into()))
        }
        // As in json-logic: an operation is an object with exactly one key.
        Value::Object(m) if m.len() == 1 => {
            let (name, raw_args) = m.iter().next().expect("one entry");
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            let logic = if name == "var" {
                compile_var(raw_args, path, depth)?
            } else {
                let Some(op) = Op::from_name(name) else {
                    return Err(err(path, format!("unknown operator `{name}`")));
                };
                let args = match raw_args {
                    Value::Array(items) => {
                        let mut out = Vec::with_capacity(items.len());
                        for (i, item) in items.iter().enumerate() {
                            let l = path.len();
                            path.push_str(&format!("[{i}]"));
                            out.push(compile_at(item, path, depth + 1)?);
                            path.truncate(l);
                        }
                        out
                    }
                    single => vec![compile_at(single, path, depth + 1)?],
                };
                check_arity(op, &args).map_err(|m| err(path, m))?;
                Logic::Op {
                    op,
                    args: args.into(),
                }
            };
            path.truncate(len);
            Ok(logic)
        }
        other => Ok(Logic::Lit(other.clone())),
    }
}

fn check_arity(op: Op, args: &[Logic]) -> Result<(), String> {
    let need = |n: usize, what: &str| {
        if args.len() < n {
            Err(format!(
                "`{what}` needs at least {n} arguments, found {}",
                args.len()
            ))
        } else {
            Ok(())
        }
    };
    match op {
        Op::Map | Op::Filter | Op::All | Op::None | Op::Some => need(2, "map/filter/all/none/some"),
        Op::Reduce => need(2, "reduce"),
        Op::SemVer => need(3, "sem_ver"),
        Op::StartsWith => need(2, "starts_with"),
        Op::EndsWith => need(2, "ends_with"),
        _ => Ok(()),
    }
}

fn compile_var(raw: &Value, path: &mut String, depth: usize) -> Result<Logic, LogicError> {
    let (p, default) = match raw {
        Value::Array(items) => (items.first().unwrap_or(&Value::Null), items.get(1)),
        single => (single, None),
    };
    let default = match default {
        Some(d) => Some(Box::new(compile_at(d, path, depth + 1)?)),
        None => None,
    };
    Ok(match p {
        Value::Null => Logic::Var {
            path: VarPath::Whole,
            default,
        },
        Value::String(s) if s.is_empty() => Logic::Var {
            path: VarPath::Whole,
            default,
        },
        Value::String(s) => Logic::Var {
            path: VarPath::Segments(s.split('.').map(Box::from).collect()),
            default,
        },
        Value::Number(n) => Logic::Var {
            path: VarPath::Segments(vec![Box::from(n.to_string().as_str())].into()),
            default,
        },
        Value::Array(a) if a.is_empty() => Logic::Var {
            path: VarPath::Whole,
            default,
        },
        other => Logic::VarDyn {
            path: Box::new(compile_at(other, path, depth + 1)?),
            default,
        },
    })
}
