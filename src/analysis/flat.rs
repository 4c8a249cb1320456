//! Flat inputs: one JSON object per line, or CSV with a header row. Both use
//! the same columns (docs/analysis.md):
//!
//! `type` (`exposure` or `outcome`), `time` (Unix nanoseconds or RFC 3339),
//! `unit`, then for exposures `experiment`, `variant`, `version`, `epoch`,
//! `salt_fingerprint`, `stratum` (optional), and for outcomes `metric`, `value`
//! (default 1), `event_id` (optional) and `experiment` (optional: restricts the
//! outcome to that experiment).
//!
//! Both become a [`Row`] of borrowed cells, then one validation makes the
//! record, so the formats cannot drift apart. JSON cells borrow from the line;
//! CSV cells are the fields as written (no type guessing: a unit `007` stays
//! `007`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::record::{parse_time, Exposure, Outcome, Record};

/// A scalar cell: JSON allows numbers or strings, CSV only strings.
#[derive(Debug, Clone)]
pub enum Cell<'a> {
    /// A non-negative JSON integer.
    Int(u64),
    /// Any other JSON number.
    Float(f64),
    /// A string (every CSV field).
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Cell<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cell<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell<'de>, E> {
                Ok(Cell::Int(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell<'de>, E> {
                Ok(Cell::Float(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell<'de>, E> {
                Ok(Cell::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
                Ok(Cell::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
                Ok(Cell::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Cell<'de>, E> {
                Ok(Cell::Text(Cow::Owned(v)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'a> Cell<'a> {
    fn text(&self) -> Cow<'a, str> {
        match self {
            Cell::Int(i) => Cow::Owned(i.to_string()),
            Cell::Float(f) => Cow::Owned(f.to_string()),
            Cell::Text(s) => s.clone(),
        }
    }
    /// Missing and empty cells are the same.
    fn is_empty(&self) -> bool {
        matches!(self, Cell::Text(s) if s.is_empty())
    }
}

/// One row, before validation. Unknown columns are ignored so exports with
/// extra columns can be fed in directly.
#[derive(Deserialize, Debug, Default)]
pub struct Row<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cell<'a>>,
    #[serde(default, borrow)]
    time: Option<Cell<'a>>,
    #[serde(default, borrow)]
    unit: Option<Cell<'a>>,
    #[serde(default, borrow)]
    experiment: Option<Cell<'a>>,
    #[serde(default, borrow)]
    variant: Option<Cell<'a>>,
    #[serde(default, borrow)]
    version: Option<Cell<'a>>,
    #[serde(default, borrow)]
    epoch: Option<Cell<'a>>,
    #[serde(default, borrow)]
    salt_fingerprint: Option<Cell<'a>>,
    #[serde(default, borrow)]
    stratum: Option<Cell<'a>>,
    #[serde(default, borrow)]
    metric: Option<Cell<'a>>,
    #[serde(default, borrow)]
    value: Option<Cell<'a>>,
    #[serde(default, borrow)]
    event_id: Option<Cell<'a>>,
}

/// The documented columns, in [`Row`] order: a CSV header is matched against these.
pub const COLUMNS: [&str; 12] = [
    "type",
    "time",
    "unit",
    "experiment",
    "variant",
    "version",
    "epoch",
    "salt_fingerprint",
    "stratum",
    "metric",
    "value",
    "event_id",
];

fn present<'a>(c: &Option<Cell<'a>>) -> Option<Cow<'a, str>> {
    c.as_ref().filter(|c| !c.is_empty()).map(Cell::text)
}

impl<'a> Row<'a> {
    /// A row from CSV fields: `cells[i]` is the field of column [`COLUMNS`]`[i]`,
    /// if the file has that column.
    pub fn from_cells(cells: [Option<&'a str>; 12]) -> Row<'a> {
        let [kind, time, unit, experiment, variant, version, epoch, salt_fingerprint, stratum, metric, value, event_id] =
            cells.map(|c| c.map(|s| Cell::Text(Cow::Borrowed(s))));
        Row {
            kind,
            time,
            unit,
            experiment,
            variant,
            version,
            epoch,
            salt_fingerprint,
            stratum,
            metric,
            value,
            event_id,
        }
    }

    /// Validates the row into a record.
    pub fn into_record(self) -> Result<Record<'a>, String> {
        let need = |c: &Option<Cell<'a>>, name: &str| {
            present(c).ok_or_else(|| format!("missing column {name:?}"))
        };
        let kind = need(&self.kind, "type")?;
        let time_ns = match &self.time {
            Some(Cell::Int(t)) => *t,
            t => parse_time(&need(t, "time")?)?,
        };
        let unit = need(&self.unit, "unit")?;
        match &*kind {
            "exposure" => {
                let epoch = match &self.epoch {
                    Some(Cell::Int(e)) if *e <= u64::from(u32::MAX) => *e as u32,
                    e => match present(e) {
                        Some(e) => e
                            .parse::<u32>()
                            .map_err(|_| format!("epoch {e:?} is not a non-negative integer"))?,
                        None => 0,
                    },
                };
                Ok(Record::Exposure(Exposure {
                    time_ns,
                    unit,
                    experiment: need(&self.experiment, "experiment")?,
                    variant: need(&self.variant, "variant")?,
                    version: present(&self.version).unwrap_or_default(),
                    epoch,
                    salt_fingerprint: present(&self.salt_fingerprint).unwrap_or_default(),
                    stratum: present(&self.stratum),
                }))
            }
            "outcome" => {
                let value = match &self.value {
                    Some(Cell::Float(v)) => *v,
                    Some(Cell::Int(v)) => *v as f64,
                    v => match present(v) {
                        Some(v) => v
                            .parse::<f64>()
                            .map_err(|_| format!("value {v:?} is not a number"))?,
                        None => 1.0,
                    },
                };
                if !value.is_finite() {
                    return Err(format!("value {value} is not finite"));
                }
                Ok(Record::Outcome(Outcome {
                    time_ns,
                    unit,
                    metric: need(&self.metric, "metric")?,
                    value,
                    event_id: present(&self.event_id).unwrap_or_default(),
                    experiments: present(&self.experiment).into_iter().collect(),
                }))
            }
            other => Err(format!(
                "type {other:?} is neither \"exposure\" nor \"outcome\""
            )),
        }
    }
}

/// Parses one flat JSON line.
pub fn parse_json_line(line: &[u8]) -> Result<Record<'_>, String> {
    let row: Row<'_> =
        serde_json::from_slice(line).map_err(|e| format!("not a JSON object: {e}"))?;
    row.into_record()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_become_records_and_bad_ones_say_why() {
        let r =
            parse_json_line(br#"{"type":"outcome","time":5,"unit":"u","metric":"m","value":2.5}"#)
                .unwrap();
        let Record::Outcome(o) = r else { panic!() };
        assert_eq!((o.time_ns, o.value), (5, 2.5));
        let e = parse_json_line(
            br#"{"type":"exposure","time":"2023-11-14T22:13:20Z","unit":"u","experiment":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e, "missing column \"variant\"");
        let e = parse_json_line(br#"{"type":"click","time":1,"unit":"u"}"#).unwrap_err();
        assert!(e.contains("neither"), "{e}");
        let e = parse_json_line(
            br#"{"type":"outcome","time":1,"unit":"u","metric":"m","value":"NaN"}"#,
        )
        .unwrap_err();
        assert!(e.contains("not finite"), "{e}");
    }
}
