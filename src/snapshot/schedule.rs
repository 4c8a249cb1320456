//! Ramp schedules: traffic steps evaluated against the clock at request time.
//!
//! A ramp (`1%` now, `10%` at 09:00 UTC, `50%` a day later) needs no config push
//! and keeps every guarantee of a manual ramp: the traffic draw and the variant
//! draws do not depend on the threshold, so raising it only adds units and never
//! moves an enrolled one. Lowering a step drops enrolled units and must be
//! acknowledged with `allowDecrease: true`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::RampStep;
use crate::engine::bucket;

/// One compiled ramp step: from `at` (Unix seconds) on, enrol slots below `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampPoint {
    /// First Unix second at which the step is in force (times with a fraction of
    /// a second round up to the next whole second).
    pub at: i64,
    /// Enrolment threshold in slots, like [`crate::snapshot::Experiment::traffic`].
    pub threshold: u64,
}

/// Parses an RFC 3339 time (with an offset) into Unix seconds, rounding a
/// fractional second up so a step never starts before its written time.
pub fn parse_time(text: &str) -> Result<i64, jiff::Error> {
    let ts: jiff::Timestamp = text.parse()?;
    let secs = ts.as_second();
    Ok(if ts.subsec_nanosecond() > 0 {
        secs + 1
    } else {
        secs
    })
}

/// Formats Unix seconds as an RFC 3339 UTC time, for messages and reports.
pub fn format_time(unix_secs: i64) -> String {
    jiff::Timestamp::from_second(unix_secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{unix_secs}"))
}

/// Compiles and checks a schedule whose level before the first step is `base`.
/// Returns the points, or every problem as `(field, message)` pairs whose field
/// is relative to the experiment (`trafficSchedule[1].at`).
pub fn compile(steps: &[RampStep], base: f64) -> Result<Box<[RampPoint]>, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut points = Vec::with_capacity(steps.len());
    let mut prev_level = base;
    let mut prev_at: Option<i64> = None;
    for (i, s) in steps.iter().enumerate() {
        let field = |name: &str| format!("trafficSchedule[{i}].{name}");
        match parse_time(&s.at) {
            Err(e) => errors.push((
                field("at"),
                format!(
                    "`{}` is not an RFC 3339 time with an offset (e.g. 2026-11-21T09:00:00Z): {e}",
                    s.at
                ),
            )),
            Ok(at) => {
                if let Some(p) = prev_at.filter(|&p| at <= p) {
                    errors.push((
                        field("at"),
                        format!(
                            "steps must be in increasing time order: {} is not after the previous step ({})",
                            format_time(at),
                            format_time(p)
                        ),
                    ));
                }
                prev_at = Some(at);
                points.push(RampPoint {
                    at,
                    threshold: bucket::threshold(s.traffic_allocation),
                });
            }
        }
        let f = s.traffic_allocation;
        if !(0.0..=1.0).contains(&f) {
            errors.push((
                field("trafficAllocation"),
                format!("must be in [0, 1], got {f}"),
            ));
        } else {
            if f < prev_level && !s.allow_decrease {
                errors.push((
                    field("trafficAllocation"),
                    format!(
                        "lowers traffic from {prev_level} to {f}, which drops enrolled units; \
                         set allowDecrease: true on this step to acknowledge it"
                    ),
                ));
            }
            prev_level = f;
        }
    }
    if errors.is_empty() {
        Ok(points.into_boxed_slice())
    } else {
        Err(errors)
    }
}

/// The threshold in force at `now` given the base threshold and sorted steps.
#[inline]
pub fn threshold_at(base: u64, steps: &[RampPoint], now: i64) -> u64 {
    match steps.partition_point(|p| p.at <= now) {
        0 => base,
        n => steps[n - 1].threshold,
    }
}

/// The current Unix time in seconds (a clock read; no allocation).
#[inline]
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: &str, f: f64, allow: bool) -> RampStep {
        RampStep {
            at: at.into(),
            traffic_allocation: f,
            allow_decrease: allow,
        }
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_rounds_fractions_up() {
        assert_eq!(parse_time("1970-01-01T00:00:10Z").unwrap(), 10);
        assert_eq!(parse_time("1970-01-01T01:00:10+01:00").unwrap(), 10);
        assert_eq!(parse_time("1970-01-01T00:00:10.2Z").unwrap(), 11);
        assert!(parse_time("1970-01-01 00:00:10").is_err());
        assert!(parse_time("tomorrow").is_err());
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn threshold_steps_in_at_each_time() {
        let steps = compile(
            &[
                step("1970-01-01T00:01:40Z", 0.25, false),
                step("1970-01-01T00:03:20Z", 0.5, false),
            ],
            0.1,
        )
        .unwrap();
        let base = bucket::threshold(0.1);
        assert_eq!(threshold_at(base, &steps, 99), base);
        assert_eq!(threshold_at(base, &steps, 100), bucket::threshold(0.25));
        assert_eq!(threshold_at(base, &steps, 199), bucket::threshold(0.25));
        assert_eq!(threshold_at(base, &steps, 200), bucket::threshold(0.5));
        assert_eq!(threshold_at(base, &steps, i64::MAX), bucket::threshold(0.5));
        assert_eq!(threshold_at(base, &[], 1000), base);
    }

    #[test]
    fn rejects_unsorted_bad_and_unacknowledged_decreasing_steps() {
        let errs = compile(
            &[
                step("2026-01-02T00:00:00Z", 0.5, false),
                step("2026-01-01T00:00:00Z", 0.6, false),
                step("not a time", 1.5, false),
                step("2026-01-03T00:00:00Z", 0.2, false),
            ],
            0.1,
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "trafficSchedule[1].at",
                "trafficSchedule[2].at",
                "trafficSchedule[2].trafficAllocation",
                "trafficSchedule[3].trafficAllocation",
            ]
        );
        assert!(errs[3].1.contains("allowDecrease"), "{}", errs[3].1);
        // A decrease below the base is refused too, and allowed when acknowledged.
        assert!(compile(&[step("2026-01-01T00:00:00Z", 0.05, false)], 0.1).is_err());
        assert!(compile(&[step("2026-01-01T00:00:00Z", 0.05, true)], 0.1).is_ok());
    }
}
