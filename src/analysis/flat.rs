//! Flat inputs: one JSON object per line, or CSV with a header row. Both use
//! the same columns (docs/analysis.md):
//!
//! `type` (`exposure` or `outcome`), `time` (Unix nanoseconds or RFC 3339),
//! `unit`, then for exposures `experiment`, `variant`, `version`, `epoch`,
//! `salt_fingerprint`, `stratum` (optional), and for outcomes `metric`, `value`
//! (default 1), `event_id` (optional) and `experiment` (optional: restricts the
//! outcome to that experiment).

use serde::Deserialize;

use super::record::{parse_time, Exposure, Outcome, Record};

/// A scalar cell: JSON allows numbers or strings, CSV only strings.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum Cell {
    Int(u64),
    Float(f64),
    Text(String),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Text(s) => s.clone(),
        }
    }
}

/// One row, before validation. Unknown columns are ignored so exports with
/// extra columns can be fed in directly.
#[derive(Deserialize, Debug, Default)]
pub struct Row {
    #[serde(rename = "type", default)]
    kind: Option<Cell>,
    #[serde(default)]
    time: Option<Cell>,
    #[serde(default)]
    unit: Option<Cell>,
    #[serde(default)]
    experiment: Option<Cell>,
    #[serde(default)]
    variant: Option<Cell>,
    #[serde(default)]
    version: Option<Cell>,
    #[serde(default)]
    epoch: Option<Cell>,
    #[serde(default)]
    salt_fingerprint: Option<Cell>,
    #[serde(default)]
    stratum: Option<Cell>,
    #[serde(default)]
    metric: Option<Cell>,
    #[serde(default)]
    value: Option<Cell>,
    #[serde(default)]
    event_id: Option<Cell>,
}

fn present(c: &Option<Cell>) -> Option<String> {
    c.as_ref().map(Cell::text).filter(|s| !s.is_empty())
}

impl Row {
    /// Validates the row into a record.
    pub fn into_record(self) -> Result<Record, String> {
        let need = |c: &Option<Cell>, name: &str| {
            present(c).ok_or_else(|| format!("missing column {name:?}"))
        };
        let kind = need(&self.kind, "type")?;
        let time_ns = parse_time(&need(&self.time, "time")?)?;
        let unit = need(&self.unit, "unit")?;
        match kind.as_str() {
            "exposure" => {
                let epoch = match present(&self.epoch) {
                    Some(e) => e
                        .parse::<u32>()
                        .map_err(|_| format!("epoch {e:?} is not a non-negative integer"))?,
                    None => 0,
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
                let value = match present(&self.value) {
                    Some(v) => v
                        .parse::<f64>()
                        .map_err(|_| format!("value {v:?} is not a number"))?,
                    None => 1.0,
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
pub fn parse_json_line(line: &[u8]) -> Result<Record, String> {
    let row: Row = serde_json::from_slice(line).map_err(|e| format!("not a JSON object: {e}"))?;
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
