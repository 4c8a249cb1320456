//! One input record, whatever file format it came from.
//!
//! The readers (`otlp`, `flat`) turn lines into these; the cohort table consumes
//! them. Strings are owned because a record outlives the line buffer only for
//! the few fields the cohort table keeps (the unit id, once per unit).

/// An exposure: a unit saw a variant of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The unit id as exported (raw or hashed: it only has to match the outcomes').
    pub unit: String,
    /// Experiment key.
    pub experiment: String,
    /// Variant key.
    pub variant: String,
    /// Config version that produced the assignment (empty when unknown).
    pub version: String,
    /// Acknowledged-reshuffle counter.
    pub epoch: u32,
    /// Fingerprint of the salt (empty when unknown).
    pub salt_fingerprint: String,
    /// Value of the experiment's `srm.strata` attribute, when the input carries it.
    pub stratum: Option<String>,
}

/// An outcome: a metric event of a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// When, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The unit id (must match the exposures').
    pub unit: String,
    /// Metric name.
    pub metric: String,
    /// Numeric value (1 for a plain conversion event).
    pub value: f64,
    /// Idempotency key: records with the same id count once (empty: no dedup).
    pub event_id: String,
    /// Experiments the sidecar attached; empty means "every experiment with this metric".
    pub experiments: Vec<String>,
}

/// A parsed input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An exposure.
    Exposure(Exposure),
    /// An outcome.
    Outcome(Outcome),
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
