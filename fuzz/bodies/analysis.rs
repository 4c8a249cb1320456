//! Fuzzes the `cohortd analyze` input parsers: the first byte picks the
//! reader, the rest is its input. `0`: one OTLP Collector line; `1`: one flat
//! JSON line; `2`: JSON lines as a parsing thread sees a chunk; `3`: a CSV
//! file. Nothing may panic, and the outcome pass, which skips lines before
//! parsing them, must deliver exactly the outcome records, bad lines aside, of
//! the full pass, in the same order: a skip that lost an outcome would bias
//! every effect estimate.
//!
//! Shared by the libFuzzer target (`fuzz/fuzz_targets/analysis.rs`) and the replay of
//! `fuzz/corpus/analysis/` and `fuzz/regressions/analysis/` in `tests/fuzz_regressions.rs`.

use std::path::Path;

use cohortd::analysis::input::{parse_lines, scan_csv, InputStats, Packed, Pass};
use cohortd::analysis::record::Record;
use cohortd::analysis::{flat, otlp};

/// Runs one input. Panics (the failure libFuzzer reports) on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok(p) = otlp::parse_line(body) {
                for r in &p.records {
                    check(r);
                }
            }
        }
        1 => {
            if let Ok(r) = flat::parse_json_line(body) {
                check(&r);
            }
        }
        2 => passes_agree(|pass, st, sink| {
            let mut packed = Packed::default();
            parse_lines(Path::new("fuzz"), body, 1, pass, st, &mut packed);
            packed.for_each(sink);
        }),
        _ => passes_agree(|pass, st, mut sink| {
            scan_csv(Path::new("fuzz.csv"), body, pass, st, &mut sink).expect("reading memory");
        }),
    }
}

/// Invariants of every record a reader returns: outcome values are finite
/// (NaN would poison every sum it joins).
fn check(r: &Record<'_>) {
    if let Record::Outcome(o) = r {
        assert!(o.value.is_finite(), "outcome value {}", o.value);
    }
}

/// The outcome pass gives the full pass's outcomes, and no more bad lines.
fn passes_agree(read: impl Fn(Pass, &mut InputStats, &mut dyn FnMut(Record<'_>))) {
    let mut all = InputStats::default();
    let mut outcomes_of_all = Vec::new();
    read(Pass::All, &mut all, &mut |r| {
        check(&r);
        if matches!(r, Record::Outcome(_)) {
            outcomes_of_all.push(format!("{r:?}"));
        }
    });
    let mut only = InputStats::default();
    let mut outcomes = Vec::new();
    read(Pass::Outcomes, &mut only, &mut |r| {
        assert!(
            matches!(r, Record::Outcome(_)),
            "the outcome pass gave {r:?}"
        );
        outcomes.push(format!("{r:?}"));
    });
    assert_eq!(outcomes, outcomes_of_all);
    assert_eq!(only.outcomes, all.outcomes);
    assert!(only.bad_lines <= all.bad_lines);
}
