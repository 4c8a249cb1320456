//! The unit's stratum: the value of the experiment's `srm.strata` context
//! attribute, which the live SRM check tallies and each exposure exports as
//! `cohortd.stratum`, so `cohortd analyze` can test the split inside each
//! stratum from OTLP input as it does from flat input.
//!
//! One reading serves both uses, so the live check and the offline analysis
//! see the same strata. Values are bounded: strata are meant to be a handful
//! of segment labels (`region`, `device`, a weekday), so a value longer than
//! [`MAX_STRATUM_LEN`] bytes, an empty string, a list or an object is "no
//! stratum" (the exposure still counts in the totals). Experiments without
//! `srm.strata` never read the context here, so they pay nothing.

use std::borrow::Cow;

use crate::engine::{Attr, Context};
use crate::snapshot::Experiment;

use super::privacy::UnitIdMode;

/// Longest stratum value used, in bytes. Longer values are treated as absent
/// rather than cut, since a cut could merge two different strata.
pub const MAX_STRATUM_LEN: usize = 128;

/// The strata attribute an experiment declares, if any.
pub fn strata_attribute(e: &Experiment) -> Option<&str> {
    e.config.srm.as_ref()?.strata.as_deref()
}

/// The unit's stratum in `e`: the string form of the strata attribute in
/// `ctx` (strings as they are, booleans as `true`/`false`, whole numbers
/// without a fraction), or `None` when the experiment declares no strata or
/// the value is missing, not a scalar, empty or too long. Allocates only for
/// numbers.
pub fn stratum<'c>(e: &Experiment, ctx: &'c dyn Context) -> Option<Cow<'c, str>> {
    let attr = strata_attribute(e)?;
    let v = match ctx.get(attr)? {
        Attr::Str(s) => Cow::Borrowed(s),
        Attr::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Attr::Num(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 => {
            Cow::Owned(format!("{}", n as i64))
        }
        Attr::Num(n) if n.is_finite() => Cow::Owned(n.to_string()),
        _ => return None,
    };
    (!v.is_empty() && v.len() <= MAX_STRATUM_LEN).then_some(v)
}

/// The exported `cohortd.stratum` value. The stratum comes from the caller's
/// context like the unit id, so it follows the same `--exposure-unit-id`
/// setting: as it is (`raw`), the same 128-bit pseudonym as a hashed unit id
/// (`hash`: per-stratum SRM still works, since equal values hash equally), or
/// not exported (`omit`).
pub fn export(stratum: &str, mode: UnitIdMode) -> Option<String> {
    mode.export(stratum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposure::privacy::hash_unit;

    fn experiment(yaml_srm: &str) -> crate::Snapshot {
        let yaml = format!(
            "experiments:\n  - key: e\n    status: running\n    variants: [a, b]\n{yaml_srm}"
        );
        let path = std::path::Path::new("t.yaml");
        let doc = crate::config::parse_file(path, yaml.as_bytes()).unwrap();
        crate::Snapshot::compile(&[crate::config::SourceFile {
            path: path.to_owned(),
            doc,
        }])
        .unwrap()
    }

    fn ctx(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn scalars_become_strata_and_everything_else_is_none() {
        let snap = experiment("    srm: {strata: region}\n");
        let e = snap.experiment("e").unwrap();
        let of = |v: serde_json::Value| {
            let c = ctx(serde_json::json!({ "region": v }));
            stratum(e, &c).map(Cow::into_owned)
        };
        assert_eq!(of("eu".into()).as_deref(), Some("eu"));
        assert_eq!(of(true.into()).as_deref(), Some("true"));
        assert_eq!(of(3.into()).as_deref(), Some("3"));
        assert_eq!(of(2.5.into()).as_deref(), Some("2.5"));
        assert_eq!(of("".into()), None);
        assert_eq!(of(serde_json::json!(["eu"])), None);
        assert_eq!(of(serde_json::Value::Null), None);
        let longest = "x".repeat(MAX_STRATUM_LEN);
        assert_eq!(of(longest.clone().into()), Some(longest.clone()));
        assert_eq!(of(format!("{longest}x").into()), None);
        assert_eq!(stratum(e, &ctx(serde_json::json!({}))), None);
    }

    #[test]
    fn experiments_without_strata_have_none() {
        let snap = experiment("");
        let e = snap.experiment("e").unwrap();
        assert_eq!(
            stratum(e, &ctx(serde_json::json!({ "region": "eu" }))),
            None
        );
    }

    #[test]
    fn the_exported_value_follows_the_unit_id_mode() {
        assert_eq!(export("eu", UnitIdMode::Raw).as_deref(), Some("eu"));
        assert_eq!(export("eu", UnitIdMode::Hash), Some(hash_unit("eu")));
        assert_eq!(export("eu", UnitIdMode::Omit), None);
    }
}
