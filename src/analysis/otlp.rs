//! OTLP JSON lines, as the OpenTelemetry Collector's `file` exporter writes
//! them: one `{"resourceLogs": [...]}` export request per line.
//!
//! Exposure log records (event name `feature_flag.evaluation`) and outcome log
//! records (`cohortd.outcome`) are recognised by their event name, or, for
//! collectors that drop `eventName`, by their attributes (`feature_flag.key`,
//! `cohortd.outcome.metric`). Other log records are counted and ignored. The
//! attribute names are the tables in docs/exposures.md.
//!
//! Parsing is borrowed and streaming: strings point into the line (unless
//! escaped), each log record's attributes land in fixed slots for the names
//! analysis reads (others are skipped), and records are converted as they are
//! read rather than collected as a tree first. A line of 100 records costs a
//! handful of allocations, not thousands.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::record::{Exposure, Outcome, Record};

/// Event name of an exposure log record.
pub const EXPOSURE_EVENT: &str = "feature_flag.evaluation";
/// Event name of an outcome log record.
pub const OUTCOME_EVENT: &str = "cohortd.outcome";

/// A JSON string, borrowed from the line when it has no escapes. (`Cow`'s own
/// `Deserialize` always copies, except as a direct `#[serde(borrow)]` field.)
#[derive(Debug, Clone, Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// 64-bit integers are strings in protobuf JSON; accept numbers too.
#[derive(Debug, Clone)]
enum Int<'a> {
    Text(Cow<'a, str>),
    Number(i64),
}

impl<'de: 'a, 'a> Deserialize<'de> for Int<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Int<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int<'de>, E> {
                Ok(Int::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int<'de>, E> {
                i64::try_from(v)
                    .map(Int::Number)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Int<'de>, E> {
                Ok(Int::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int<'de>, E> {
                Ok(Int::Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

impl Int<'_> {
    fn get(&self) -> Option<i64> {
        match self {
            Int::Text(s) => s.parse().ok(),
            Int::Number(n) => Some(*n),
        }
    }
}

/// The protobuf-JSON `AnyValue`: exactly one field is set.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
struct AnyValue<'a> {
    #[serde(borrow)]
    string_value: Option<Text<'a>>,
    #[serde(borrow)]
    int_value: Option<Int<'a>>,
    double_value: Option<f64>,
    bool_value: Option<bool>,
    #[serde(borrow)]
    array_value: Option<ArrayValue<'a>>,
    #[serde(borrow)]
    kvlist_value: Option<KvList<'a>>,
}

#[derive(Deserialize, Debug)]
struct ArrayValue<'a> {
    #[serde(default, borrow)]
    values: Vec<AnyValue<'a>>,
}

#[derive(Deserialize, Debug)]
struct KvList<'a> {
    #[serde(default, borrow)]
    values: Vec<KeyValue<'a>>,
}

#[derive(Deserialize, Debug)]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: Text<'a>,
    #[serde(default, borrow)]
    value: AnyValue<'a>,
}

impl<'a> AnyValue<'a> {
    fn text(&self) -> Option<Cow<'a, str>> {
        if let Some(s) = &self.string_value {
            return Some(s.0.clone());
        }
        if let Some(i) = self.int_value.as_ref().and_then(Int::get) {
            return Some(Cow::Owned(i.to_string()));
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
        self.string_value.as_ref().and_then(|s| s.0.parse().ok())
    }
}

/// The attributes analysis reads, one slot each (the first occurrence wins);
/// all others are parsed (borrowed) and dropped.
const KEYS: [&str; 11] = [
    "feature_flag.key",
    "feature_flag.result.variant",
    "feature_flag.context.id",
    "feature_flag.version",
    "cohortd.salt_fingerprint",
    "cohortd.epoch",
    "cohortd.stratum",
    "cohortd.outcome.metric",
    "cohortd.outcome.value",
    "cohortd.outcome.event_id",
    "cohortd.assignments",
];
const FLAG_KEY: usize = 0;
const VARIANT: usize = 1;
const UNIT: usize = 2;
const VERSION: usize = 3;
const SALT: usize = 4;
const EPOCH: usize = 5;
const STRATUM: usize = 6;
const METRIC: usize = 7;
const VALUE: usize = 8;
const EVENT_ID: usize = 9;
const ASSIGNMENTS: usize = 10;

#[derive(Default, Debug)]
struct Attrs<'a>([Option<AnyValue<'a>>; KEYS.len()]);

impl<'de: 'a, 'a> Deserialize<'de> for Attrs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Attrs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of attributes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attrs<'de>, A::Error> {
                let mut out = Attrs::default();
                while let Some(kv) = seq.next_element::<KeyValue<'de>>()? {
                    if let Some(i) = KEYS.iter().position(|k| *k == kv.key.0) {
                        if out.0[i].is_none() {
                            out.0[i] = Some(kv.value);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'a> Attrs<'a> {
    fn get(&self, i: usize) -> Option<&AnyValue<'a>> {
        self.0[i].as_ref()
    }
    fn text(&self, i: usize) -> Option<Cow<'a, str>> {
        self.get(i).and_then(AnyValue::text)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogRecord<'a> {
    #[serde(default, borrow)]
    time_unix_nano: Option<Int<'a>>,
    #[serde(default, borrow)]
    observed_time_unix_nano: Option<Int<'a>>,
    #[serde(default, borrow)]
    event_name: Option<Text<'a>>,
    #[serde(default, borrow)]
    attributes: Attrs<'a>,
}

/// What one OTLP line held.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    /// Exposure and outcome records.
    pub records: Vec<Record<'a>>,
    /// Log records that are neither (other events), ignored.
    pub other: u64,
    /// Exposures or outcomes without a unit id (`--exposure-unit-id omit`),
    /// which cannot be joined.
    pub no_unit: u64,
    /// A record that is not usable: the whole line is bad.
    invalid: Option<String>,
}

/// Parses one line of the Collector's file exporter output. A line is used
/// whole or not at all: one bad record makes it a bad line.
pub fn parse_line(line: &[u8]) -> Result<Parsed<'_>, String> {
    let mut out = Parsed::default();
    let mut de = serde_json::Deserializer::from_slice(line);
    let res = Fields {
        out: &mut out,
        level: Level::Request,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (res, out.invalid.take()) {
        (_, Some(reason)) => Err(reason),
        (Err(e), None) => Err(format!("not OTLP JSON: {e}")),
        (Ok(()), None) => Ok(out),
    }
}

/// Where in the export request a map is.
#[derive(Clone, Copy)]
enum Level {
    Request,
    ResourceLogs,
    ScopeLogs,
}

impl Level {
    /// The list field this level descends into.
    fn list(self) -> &'static str {
        match self {
            Level::Request => "resourceLogs",
            Level::ResourceLogs => "scopeLogs",
            Level::ScopeLogs => "logRecords",
        }
    }
}

/// One object of the request: its list field is walked, the rest skipped.
struct Fields<'o, 'a> {
    out: &'o mut Parsed<'a>,
    level: Level,
}

/// The elements of a list field.
struct Items<'o, 'a> {
    out: &'o mut Parsed<'a>,
    level: Level,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Fields<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Fields<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP logs object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 == self.level.list() {
                map.next_value_seed(Items {
                    out: &mut *self.out,
                    level: self.level,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Items<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Items<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = match self.level {
            Level::Request => Level::ResourceLogs,
            Level::ResourceLogs => Level::ScopeLogs,
            Level::ScopeLogs => {
                while let Some(rec) = seq.next_element::<LogRecord<'de>>()? {
                    match convert(rec) {
                        Ok(Converted::Record(r)) => self.out.records.push(r),
                        Ok(Converted::Other) => self.out.other += 1,
                        Ok(Converted::NoUnit) => self.out.no_unit += 1,
                        Err(reason) => {
                            self.out.invalid = Some(reason);
                            return Err(de::Error::custom("unusable log record"));
                        }
                    }
                }
                return Ok(());
            }
        };
        while seq
            .next_element_seed(Fields {
                out: &mut *self.out,
                level: inner,
            })?
            .is_some()
        {}
        Ok(())
    }
}

enum Converted<'a> {
    Record(Record<'a>),
    Other,
    NoUnit,
}

fn kv_text<'a>(pairs: &[KeyValue<'a>], key: &str) -> Option<Cow<'a, str>> {
    pairs
        .iter()
        .find(|kv| kv.key.0 == key)
        .and_then(|kv| kv.value.text())
}

fn convert(rec: LogRecord<'_>) -> Result<Converted<'_>, String> {
    let a = &rec.attributes;
    let name = rec.event_name.as_ref().map_or("", |n| &*n.0);
    let is_exposure = name == EXPOSURE_EVENT || (name.is_empty() && a.get(FLAG_KEY).is_some());
    let is_outcome = name == OUTCOME_EVENT || (name.is_empty() && a.get(METRIC).is_some());
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
    let Some(unit) = a.text(UNIT) else {
        return Ok(Converted::NoUnit);
    };
    let need = |i: usize| {
        a.text(i)
            .ok_or_else(|| format!("{name} record without attribute {}", KEYS[i]))
    };
    if is_exposure {
        let epoch = match a.get(EPOCH).and_then(|v| v.int_value.as_ref()?.get()) {
            Some(e) => u32::try_from(e).map_err(|_| format!("cohortd.epoch {e} out of range"))?,
            None => 0,
        };
        return Ok(Converted::Record(Record::Exposure(Exposure {
            time_ns,
            unit,
            experiment: need(FLAG_KEY)?,
            variant: need(VARIANT)?,
            version: a.text(VERSION).unwrap_or_default(),
            epoch,
            salt_fingerprint: a.text(SALT).unwrap_or_default(),
            stratum: a.text(STRATUM),
        })));
    }
    let value = match a.get(VALUE) {
        Some(v) => v.number().ok_or("cohortd.outcome.value is not a number")?,
        None => 1.0,
    };
    if !value.is_finite() {
        return Err(format!("cohortd.outcome.value {value} is not finite"));
    }
    let mut experiments = Vec::new();
    if let Some(list) = a.get(ASSIGNMENTS).and_then(|v| v.array_value.as_ref()) {
        for item in &list.values {
            let pairs = item
                .kvlist_value
                .as_ref()
                .ok_or("cohortd.assignments items must be key-value lists")?;
            let exp = kv_text(&pairs.values, "experiment")
                .ok_or("cohortd.assignments item without experiment")?;
            experiments.push(exp);
        }
    }
    Ok(Converted::Record(Record::Outcome(Outcome {
        time_ns,
        unit,
        metric: need(METRIC)?,
        value,
        event_id: a.text(EVENT_ID).unwrap_or_default(),
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
            (&*e.experiment, &*e.variant, e.epoch),
            ("checkout", "blue", 2)
        );
        assert_eq!(e.time_ns, 1_700_000_000_000_000_000);
        let Record::Outcome(o) = &p.records[1] else {
            panic!()
        };
        assert_eq!((&*o.metric, o.value), ("revenue", 12.5));
        assert_eq!(o.experiments, vec!["checkout"]);
    }

    #[test]
    fn a_truncated_line_is_an_error_not_an_empty_batch() {
        let err = parse_line(br#"{"resourceLogs":[{"scopeLogs":[{"logRec"#).unwrap_err();
        assert!(err.contains("not OTLP JSON"), "{err}");
    }
}
