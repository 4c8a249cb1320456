//! OTLP JSON lines, as the OpenTelemetry Collector's `file` exporter writes
//! them: one `{"resourceLogs": [...]}` export request per line.
//!
//! Exposure log records (event name `feature_flag.evaluation`) and outcome log
//! records (`cohortd.outcome`) are recognised by their event name, or, for
//! collectors that drop `eventName`, by their attributes (`feature_flag.key`,
//! `cohortd.outcome.metric`). Other log records are counted and ignored. The
//! attribute names are the tables in docs/exposures.md.

use serde::Deserialize;

use super::record::{Exposure, Outcome, Record};

/// Event name of an exposure log record.
pub const EXPOSURE_EVENT: &str = "feature_flag.evaluation";
/// Event name of an outcome log record.
pub const OUTCOME_EVENT: &str = "cohortd.outcome";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceLogs {
    #[serde(default)]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeLogs {
    #[serde(default)]
    log_records: Vec<LogRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogRecord {
    #[serde(default)]
    time_unix_nano: Option<Int>,
    #[serde(default)]
    observed_time_unix_nano: Option<Int>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: AnyValue,
}

/// The protobuf-JSON `AnyValue`: exactly one field is set.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    int_value: Option<Int>,
    double_value: Option<f64>,
    bool_value: Option<bool>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KvList>,
}

#[derive(Deserialize)]
struct ArrayValue {
    #[serde(default)]
    values: Vec<AnyValue>,
}

#[derive(Deserialize)]
struct KvList {
    #[serde(default)]
    values: Vec<KeyValue>,
}

/// 64-bit integers are strings in protobuf JSON; accept numbers too.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Int {
    Text(String),
    Number(i64),
}

impl Int {
    fn get(&self) -> Option<i64> {
        match self {
            Int::Text(s) => s.parse().ok(),
            Int::Number(n) => Some(*n),
        }
    }
}

impl AnyValue {
    fn text(&self) -> Option<String> {
        if let Some(s) = &self.string_value {
            return Some(s.clone());
        }
        if let Some(i) = self.int_value.as_ref().and_then(Int::get) {
            return Some(i.to_string());
        }
        None
    }
    fn number(&self) -> Option<f64> {
        if let Some(d) = self.double_value {
            return Some(d);
        }
        if let Some(i) = self.int_value.as_ref().and_then(Int::get) {
            return Some(i as f64);
        }
        if let Some(b) = self.bool_value {
            return Some(if b { 1.0 } else { 0.0 });
        }
        self.string_value.as_deref().and_then(|s| s.parse().ok())
    }
}

/// What one OTLP line held.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Exposure and outcome records.
    pub records: Vec<Record>,
    /// Log records that are neither (other events), ignored.
    pub other: u64,
    /// Exposures or outcomes without a unit id (`--exposure-unit-id omit`),
    /// which cannot be joined.
    pub no_unit: u64,
}

/// Parses one line of the Collector's file exporter output.
pub fn parse_line(line: &[u8]) -> Result<Parsed, String> {
    let req: Request = serde_json::from_slice(line).map_err(|e| format!("not OTLP JSON: {e}"))?;
    let mut out = Parsed::default();
    for r in req.resource_logs {
        for s in r.scope_logs {
            for rec in s.log_records {
                match convert(rec)? {
                    Converted::Record(r) => out.records.push(r),
                    Converted::Other => out.other += 1,
                    Converted::NoUnit => out.no_unit += 1,
                }
            }
        }
    }
    Ok(out)
}

enum Converted {
    Record(Record),
    Other,
    NoUnit,
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

fn convert(rec: LogRecord) -> Result<Converted, String> {
    let a = &rec.attributes;
    let name = rec.event_name.as_deref().unwrap_or("");
    let is_exposure =
        name == EXPOSURE_EVENT || (name.is_empty() && attr(a, "feature_flag.key").is_some());
    let is_outcome =
        name == OUTCOME_EVENT || (name.is_empty() && attr(a, "cohortd.outcome.metric").is_some());
    if !is_exposure && !is_outcome {
        return Ok(Converted::Other);
    }
    let time_ns = rec
        .time_unix_nano
        .as_ref()
        .and_then(Int::get)
        .filter(|&t| t > 0)
        .or_else(|| rec.observed_time_unix_nano.as_ref().and_then(Int::get))
        .filter(|&t| t > 0)
        .ok_or("log record without timeUnixNano")? as u64;
    let Some(unit) = attr(a, "feature_flag.context.id").and_then(AnyValue::text) else {
        return Ok(Converted::NoUnit);
    };
    let text = |k: &str| attr(a, k).and_then(AnyValue::text);
    let need = |k: &str| text(k).ok_or_else(|| format!("{name} record without attribute {k}"));
    if is_exposure {
        let epoch = match attr(a, "cohortd.epoch").and_then(|v| v.int_value.as_ref()?.get()) {
            Some(e) => u32::try_from(e).map_err(|_| format!("cohortd.epoch {e} out of range"))?,
            None => 0,
        };
        return Ok(Converted::Record(Record::Exposure(Exposure {
            time_ns,
            unit,
            experiment: need("feature_flag.key")?,
            variant: need("feature_flag.result.variant")?,
            version: text("feature_flag.version").unwrap_or_default(),
            epoch,
            salt_fingerprint: text("cohortd.salt_fingerprint").unwrap_or_default(),
            stratum: text("cohortd.stratum"),
        })));
    }
    let value = match attr(a, "cohortd.outcome.value") {
        Some(v) => v.number().ok_or("cohortd.outcome.value is not a number")?,
        None => 1.0,
    };
    if !value.is_finite() {
        return Err(format!("cohortd.outcome.value {value} is not finite"));
    }
    let mut experiments = Vec::new();
    if let Some(list) = attr(a, "cohortd.assignments").and_then(|v| v.array_value.as_ref()) {
        for item in &list.values {
            let pairs = item
                .kvlist_value
                .as_ref()
                .ok_or("cohortd.assignments items must be key-value lists")?;
            let exp = attr(&pairs.values, "experiment")
                .and_then(AnyValue::text)
                .ok_or("cohortd.assignments item without experiment")?;
            experiments.push(exp);
        }
    }
    Ok(Converted::Record(Record::Outcome(Outcome {
        time_ns,
        unit,
        metric: need("cohortd.outcome.metric")?,
        value,
        event_id: text("cohortd.outcome.event_id").unwrap_or_default(),
        experiments,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_and_outcome_records_are_read_from_a_collector_line() {
        let line = br#"{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{"name":"cohortd"},"logRecords":[
          {"timeUnixNano":"1700000000000000000","eventName":"feature_flag.evaluation","attributes":[
            {"key":"feature_flag.key","value":{"stringValue":"checkout"}},
            {"key":"feature_flag.result.variant","value":{"stringValue":"blue"}},
            {"key":"feature_flag.context.id","value":{"stringValue":"u1"}},
            {"key":"feature_flag.version","value":{"stringValue":"v9"}},
            {"key":"cohortd.salt_fingerprint","value":{"stringValue":"ab12"}},
            {"key":"cohortd.epoch","value":{"intValue":"2"}}]},
          {"timeUnixNano":"1700000000000000001","eventName":"cohortd.outcome","attributes":[
            {"key":"cohortd.outcome.metric","value":{"stringValue":"revenue"}},
            {"key":"cohortd.outcome.value","value":{"doubleValue":12.5}},
            {"key":"cohortd.outcome.event_id","value":{"stringValue":"e1"}},
            {"key":"feature_flag.context.id","value":{"stringValue":"u1"}},
            {"key":"cohortd.assignments","value":{"arrayValue":{"values":[{"kvlistValue":{"values":[
              {"key":"experiment","value":{"stringValue":"checkout"}},
              {"key":"variant","value":{"stringValue":"blue"}}]}}]}}}]},
          {"timeUnixNano":"5","body":{"stringValue":"an unrelated log"}}]}]}]}"#;
        let p = parse_line(line).unwrap();
        assert_eq!(p.other, 1);
        assert_eq!(p.records.len(), 2);
        let Record::Exposure(e) = &p.records[0] else {
            panic!()
        };
        assert_eq!(
            (e.experiment.as_str(), e.variant.as_str(), e.epoch),
            ("checkout", "blue", 2)
        );
        assert_eq!(e.time_ns, 1_700_000_000_000_000_000);
        let Record::Outcome(o) = &p.records[1] else {
            panic!()
        };
        assert_eq!((o.metric.as_str(), o.value), ("revenue", 12.5));
        assert_eq!(o.experiments, vec!["checkout".to_owned()]);
    }

    #[test]
    fn a_truncated_line_is_an_error_not_an_empty_batch() {
        let err = parse_line(br#"{"resourceLogs":[{"scopeLogs":[{"logRec"#).unwrap_err();
        assert!(err.contains("not OTLP JSON"), "{err}");
    }
}
