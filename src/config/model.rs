//! The config file format, as serde types.
//!
//! These types are the *input* format only: they mirror what people write in a
//! ConfigMap and are checked and compiled once into a [`crate::snapshot::Snapshot`].
//! Every struct denies unknown fields, so a typo such as `trafficAlocation` is an
//! error that names the field instead of a silently ignored setting.
//!
//! Over 500 lines because it is one idea, the whole cohortd format in one place
//! (the JSON Schema is generated from it); the `#[serde(...)]` attribute lines
//! repeat from struct to struct because each field declares its own spelling
//! and default, not because logic is copied.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// What one config file may hold: a single experiment, a list of them, or a
/// document with experiments plus shared segments, layers and holdouts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigDocument {
    /// Experiments (and plain feature flags, which are experiments too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ExperimentConfig>,
    /// Named, reusable targeting rules referenced from `targeting.segments`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segments: BTreeMap<String, Targeting>,
    /// Mutually exclusive layers. Declaring a layer is optional; it sets the salt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerConfig>,
    /// Holdouts: fractions of units kept out of every experiment that opts in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holdouts: Vec<HoldoutConfig>,
    /// A flagd flag-definition document (a file whose top level has `flags`):
    /// such a file holds flagd flags only, recognised from its content by
    /// [`super::load::parse_file`]. Not part of the cohortd format's schema.
    #[serde(skip)]
    #[schemars(skip)]
    pub flagd: Option<super::flagd::FlagdDocument>,
}

/// One experiment (or feature flag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExperimentConfig {
    /// The experiment's key, unique across the config directory. Alias: `key`.
    #[serde(alias = "key")]
    pub experiment_id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Lifecycle state; only `running` enrols units.
    pub status: Status,
    /// Fraction of eligible units enrolled, in [0, 1]. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub traffic_allocation: Option<f64>,
    /// Scheduled traffic steps (a ramp): from each step's `at` on, its
    /// `trafficAllocation` replaces `trafficAllocation`. Sorted by time; a step may
    /// lower traffic only with `allowDecrease: true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_schedule: Vec<RampStep>,
    /// Variants: strings (equal weights) or `{key, weight, value}` objects.
    pub variants: Vec<VariantConfig>,
    /// What units outside the experiment get. Default: the first variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_variant: Option<String>,
    /// When set on a stopped, paused or completed experiment, everyone gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// How units are bucketed.
    #[serde(default)]
    pub assignment: AssignmentConfig,
    /// Who is eligible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
    /// Membership in a mutually exclusive layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerMembership>,
    /// Key of a holdout this experiment respects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<String>,
    /// Analysis metadata, validated and passed through; the sidecar does not act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Analysis plan, validated and passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationPlan>,
    /// Rollback policy, validated and passed through (rollback is a config change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackPolicy>,
    /// Free-form string labels exported as metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Live sample-ratio-mismatch check settings (the check itself is always on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm: Option<SrmConfig>,
}

/// Settings of the live sample-ratio-mismatch check on exposures.
///
/// The check only reports (a gauge and a warning log); it never changes
/// assignment, because pods deciding separately on their own data would split
/// the fleet. Declaring `strata` also tests the split inside each value of that
/// context attribute, which catches an imbalance confined to one segment that the
/// totals hide.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SrmConfig {
    /// Context attribute whose values define strata, e.g. `region` or `device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strata: Option<String>,
}

/// One step of a traffic ramp (see `trafficSchedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RampStep {
    /// When the step takes effect: an RFC 3339 time with an offset, preferably UTC,
    /// e.g. `2026-11-21T09:00:00Z`.
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// Fraction of eligible units enrolled from `at` on, in [0, 1].
    #[schemars(range(min = 0.0, max = 1.0))]
    pub traffic_allocation: f64,
    /// Acknowledges that this step lowers traffic (and so drops enrolled units).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_decrease: bool,
}

/// Lifecycle state of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Validated but not served.
    Draft,
    /// Enrols units.
    Running,
    /// No enrolment; everyone gets the winner or the default.
    Paused,
    /// No enrolment; everyone gets the winner or the default.
    Stopped,
    /// No enrolment; everyone gets the winner or the default.
    Completed,
}

impl Status {
    /// The lowercase name used in configs, metrics and exposures.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
            Status::Completed => "completed",
        }
    }
}

/// A variant: either a bare key (weight 1, value = key) or a full object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantConfig {
    /// Variant key, unique within the experiment.
    pub key: String,
    /// Relative, non-negative weight. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The value served (any JSON). Default: the key as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The object form of a variant (the schema of [`VariantConfig`] is this or a string).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VariantObject {
    key: String,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum VariantSchema {
    Key(String),
    Object(VariantObject),
}

impl JsonSchema for VariantConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Variant".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        VariantSchema::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for VariantConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VariantConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a variant key string or an object {\"key\", \"weight\", \"value\"}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<VariantConfig, E> {
                Ok(VariantConfig {
                    key: s.to_owned(),
                    weight: None,
                    value: None,
                    description: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VariantConfig, A::Error> {
                let o = VariantObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(VariantConfig {
                    key: o.key,
                    weight: o.weight,
                    value: o.value,
                    description: o.description,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Bucketing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignmentConfig {
    /// Bucketing algorithm. Only `consistent_hash` exists.
    #[serde(default)]
    pub strategy: Strategy,
    /// Context attribute that identifies the unit. Default `targetingKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<String>,
    /// Hash salt. Default: the experiment key. Changing it reshuffles everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Acknowledged reshuffles. Bump it together with a salt or hashKey change to
    /// tell cohortd the reshuffle is intended; it travels with every assignment.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Bucketing algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// seahash slots for traffic, weighted rendezvous hashing for variants.
    #[default]
    ConsistentHash,
}

/// Eligibility rules. All parts must hold for a unit to be eligible.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Targeting {
    /// `attr:value` strings; every one must match the attribute's string form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// `attr:value` strings; any match excludes the unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Structured rules; every one must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Named segments (from a document's `segments`); every one must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

/// One structured targeting rule: `attribute op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// Context attribute name.
    pub attribute: String,
    /// Operator.
    pub op: Op,
    /// Operand: a scalar, or a list for `in` / `not_in`; absent for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Targeting operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// String form equals the operand's string form.
    Equals,
    /// Negation of `equals` (also true when the attribute is absent).
    NotEquals,
    /// String form is one of the listed values.
    In,
    /// String form is none of the listed values (also true when absent).
    NotIn,
    /// String prefix.
    StartsWith,
    /// String suffix.
    EndsWith,
    /// Substring.
    Contains,
    /// Numeric less-than.
    Lt,
    /// Numeric less-or-equal.
    Lte,
    /// Numeric greater-than.
    Gt,
    /// Numeric greater-or-equal.
    Gte,
    /// Semantic version equal.
    SemverEq,
    /// Semantic version less-than.
    SemverLt,
    /// Semantic version less-or-equal.
    SemverLte,
    /// Semantic version greater-than.
    SemverGt,
    /// Semantic version greater-or-equal.
    SemverGte,
    /// Regular expression match (linear-time `regex` syntax) on the string form.
    Matches,
    /// The attribute is present and not null.
    Exists,
    /// The attribute is absent or null.
    NotExists,
}

/// Declares a layer (optional: undeclared layers use their key as salt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayerConfig {
    /// Layer key.
    pub key: String,
    /// Salt of the layer's hash. Default: the layer key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Attribute identifying the unit for the layer draw. Default: the members'
    /// `assignment.hashKey`, which must then be the same for every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<String>,
}

/// An experiment's place in a layer: the half-open fraction range `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayerMembership {
    /// Layer key.
    pub key: String,
    /// `[start, end)` with 0 <= start < end <= 1.
    pub range: [f64; 2],
}

/// A holdout group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HoldoutConfig {
    /// Holdout key.
    pub key: String,
    /// Fraction of units held out, in [0, 1].
    #[schemars(range(min = 0.0, max = 1.0))]
    pub fraction: f64,
    /// Salt. Default: the holdout key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Attribute identifying the unit. Default: the `assignment.hashKey` of each
    /// experiment that opts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_key: Option<String>,
}

/// Metrics the analysis will read (metadata only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    /// The decision metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Metric>,
    /// Supporting metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondary: Vec<Metric>,
    /// Metrics that must not degrade.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<Guardrail>,
}

/// A metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metric {
    /// Metric name.
    pub name: String,
    /// Kind of metric.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MetricKind>,
    /// Which direction is good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// Kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A rate of units that converted.
    Conversion,
    /// A continuous value (duration, revenue).
    Continuous,
    /// A count per unit.
    Count,
    /// A ratio of two sums.
    Ratio,
}

/// Desired direction of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better.
    Increase,
    /// Lower is better.
    Decrease,
}

/// A guardrail metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Guardrail {
    /// Metric name.
    pub name: String,
    /// Threshold (finite).
    pub threshold: f64,
    /// What the analysis should do on breach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<GuardrailAction>,
}

/// What to do when a guardrail is breached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailAction {
    /// Roll back (a config change made by the analysis pipeline).
    Rollback,
    /// Alert a human.
    Alert,
    /// Pause the experiment.
    Pause,
}

/// The analysis plan (metadata only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvaluationPlan {
    /// Statistical method, e.g. `frequentist_t_test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Significance level, 0 < alpha < 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Multiple-comparison correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    /// Maximum number of interim looks (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peeks: Option<u32>,
    /// Minimum units per variant before reading results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sample_size: Option<u64>,
    /// When the analysis runs, e.g. `daily_0900_utc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Multiple-comparison correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction.
    None,
    /// Bonferroni.
    Bonferroni,
    /// Holm-Bonferroni.
    Holm,
    /// Benjamini-Hochberg.
    BenjaminiHochberg,
}

/// Rollback policy (metadata only: the sidecar never rolls back on its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// Whether the analysis pipeline may roll back.
    #[serde(default)]
    pub enabled: bool,
    /// Conditions that trigger it, e.g. `guardrail_breach`, `srm_detected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// Whether the rollback config change ships without review.
    #[serde(default)]
    pub auto_deploy: bool,
}
