//! One input record, whatever file format it came from.
//!
//! The readers (`otlp`, `flat`) turn lines into these. Strings borrow from the
//! line buffer (`Cow::Borrowed`) unless the input escaped them, so parsing a
//! line allocates nothing per record; the cohort table copies only what it
//! keeps (the unit id, once per unit and experiment).

use std::borrow::Cow;

/// An exposure: a unit saw a variant of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure<'a> {
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The unit id as exported (raw or hashed: it only has to match the outcomes').
    pub unit: Cow<'a, str>,
    /// Experiment key.
    pub experiment: Cow<'a, str>,
    /// Variant key.
    pub variant: Cow<'a, str>,
    /// Config version that produced the assignment (empty when unknown).
    pub version: Cow<'a, str>,
    /// Acknowledged-reshuffle counter.
    pub epoch: u32,
    /// Fingerprint of the salt (empty when unknown).
    pub salt_fingerprint: Cow<'a, str>,
    /// Value of the experiment's `srm.strata` attribute, when the input carries it.
    pub stratum: Option<Cow<'a, str>>,
}

/// An outcome: a metric event of a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<'a> {
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The unit id (must match the exposures').
    pub unit: Cow<'a, str>,
    /// Metric name.
    pub metric: Cow<'a, str>,
    /// Numeric value (1 for a plain conversion event).
    pub value: f64,
    /// Idempotency key: records with the same id count once (empty: no dedup).
    pub event_id: Cow<'a, str>,
    /// Experiments the sidecar attached; empty means "every experiment with this metric".
    pub experiments: Vec<Cow<'a, str>>,
}

/// A parsed input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// An exposure.
    Exposure(Exposure<'a>),
    /// An outcome.
    Outcome(Outcome<'a>),
}

/// Parses a timestamp: an integer of Unix nanoseconds, or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let ts: jiff::Timestamp = s
        .parse()
        .map_err(|e| format!("time {s:?} is neither Unix nanoseconds nor RFC 3339: {e}"))?;
    u64::try_from(ts.as_nanosecond()).map_err(|_| format!("time {s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_nanoseconds_or_rfc3339() {
        assert_eq!(
            parse_time("1700000000000000000"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1969-12-31T23:59:59Z").is_err());
    }
}
