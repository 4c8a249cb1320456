//! The one duration syntax of the command line: every `DURATION` flag accepts
//! the same values (`500ms`, `10s`, `5m`, `1h`, `1h 30m`, `2 hours`; a bare
//! number is seconds). Parsing is jiff's "friendly" duration format, which the
//! crate already uses for ramp times; only the bare number is ours.

use std::time::Duration;

/// Parses a non-negative duration (see the module doc), for clap's `value_parser`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("`{s}` is not a duration (e.g. 500ms, 10s, 5m, 1h): {why}");
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| bad("not a number"))?;
        return Duration::try_from_secs_f64(secs).map_err(|_| bad("out of range"));
    }
    let d: jiff::SignedDuration = t.parse().map_err(|e: jiff::Error| bad(&e.to_string()))?;
    Duration::try_from(d).map_err(|_| bad("durations cannot be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_a_bare_number() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("2 hours"), Duration::from_secs(7200));
        assert_eq!(ok("7"), Duration::from_secs(7));
        assert_eq!(ok("0.25"), Duration::from_millis(250));
    }

    #[test]
    fn refuses_garbage_and_negative_values_with_the_input_named() {
        for s in ["", "soon", "10 parsecs", "-5s", "1..2"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains(&format!("`{s}`")), "{s}: {e}");
        }
    }

    #[test]
    fn every_duration_flag_takes_the_same_syntax() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "cohortd",
            "serve",
            "--config-dir",
            "configs",
            "--shutdown-grace",
            "1h",
            "--exposure-dedup-window",
            "1h",
        ])
        .unwrap();
        let crate::cli::Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.shutdown_grace, Duration::from_secs(3600));
    }
}
