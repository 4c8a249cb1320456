//! `cohortd diff OLD NEW`: what a config change does to every experiment's cohort
//! and to every flagd-format flag.
//!
//! Exit status: 0 when the change is allowed (safe, warnings, or reshuffles
//! acknowledged by an `assignment.epoch` bump), 3 when the cohort guard would
//! refuse it (a running experiment would reassign enrolled units beyond what the
//! change requires), 1 for invalid input (either config, or `--at`), 2 for usage
//! errors. flagd flags are reported (with the exact fraction of units each
//! changed `fractional` split moves) but never refused: flagd has no epoch to
//! acknowledge a reshuffle with. Run it in CI on a pull request that edits a
//! ConfigMap.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::flagd::FractionalForm;
use crate::safety::diff::{diff, ExperimentDiff, SnapshotDiff};
use crate::safety::flagd_diff::{diff_flagd, Entry, FlagdFlagDiff};
use crate::safety::guard::{judge, Judgement, Verdict};
use crate::safety::simulate::{estimate, Estimate, Proportion};
use crate::snapshot::schedule::{format_time, parse_time, unix_now};
use crate::Snapshot;

/// Exit status when the change would be refused by the cohort guard.
pub const EXIT_REFUSED: i32 = 3;

/// Arguments of `cohortd diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config in force (directory or file).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The proposed config (directory or file).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Evaluate ramp schedules at this RFC 3339 time instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Also estimate every fraction on this many synthetic units (0: exact only).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub samples: u64,
    /// The `fractional` form flagd-format flags bucket with, as in
    /// `serve --flagd-fractional` (v2, v3: exact fractions; v1: approximate).
    #[arg(long, value_name = "FORM", default_value = "v3", env = "COHORTD_FLAGD_FRACTIONAL",
          value_parser = super::serve::parse_form)]
    pub flagd_fractional: FractionalForm,
}

/// One experiment's row: the diff, the guard's judgement and the estimate.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    #[serde(flatten)]
    diff: &'a ExperimentDiff,
    #[serde(flatten)]
    judgement: Judgement,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate: Option<Estimate>,
}

/// The JSON report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    old_version: &'a str,
    new_version: &'a str,
    at: String,
    refused: bool,
    experiments: Vec<Row<'a>>,
    /// flagd-format flags that changed (left out when none did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flagd_flags: Vec<FlagdFlagDiff>,
}

fn load(path: &Path) -> Result<Snapshot, i32> {
    Snapshot::load(path).map_err(|errors| {
        for e in &errors.0 {
            eprintln!("error: {e}");
        }
        1
    })
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    let at = match &args.at {
        None => unix_now(),
        Some(t) => match parse_time(t) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --at `{t}` is not an RFC 3339 time: {e}");
                return 1;
            }
        },
    };
    let (old, new) = match (load(&args.old), load(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        _ => return 1,
    };
    let d = diff(&old, &new, at);
    let rows: Vec<Row<'_>> = d
        .experiments
        .iter()
        .map(|e| Row {
            diff: e,
            judgement: judge(e),
            estimate: (args.samples > 0).then(|| {
                estimate(
                    old.experiment(&e.key),
                    new.experiment(&e.key),
                    at,
                    args.samples,
                )
            }),
        })
        .collect();
    let flagd = diff_flagd(&old, &new, args.flagd_fractional);
    let refused = rows.iter().any(|r| r.judgement.verdict == Verdict::Refused);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let report = Report {
            old_version: &d.old_version,
            new_version: &d.new_version,
            at: format_time(at),
            refused,
            experiments: rows,
            flagd_flags: flagd,
        };
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        write_table(&mut out, args, &d, &rows).and_then(|_| write_flagd(&mut out, args, &flagd))
    };
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: {e}");
            return 1;
        }
    }
    if refused {
        EXIT_REFUSED
    } else {
        0
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn est(p: &Proportion) -> String {
    format!(
        "{} ±{} (99%: {}..{})",
        pct(p.value),
        pct(p.std_error),
        pct(p.ci99[0]),
        pct(p.ci99[1])
    )
}

fn write_table(
    out: &mut impl Write,
    args: &Args,
    d: &SnapshotDiff,
    rows: &[Row<'_>],
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} (version {}) -> {} (version {}); schedules at {}",
        args.old.display(),
        d.old_version,
        args.new.display(),
        d.new_version,
        format_time(d.at)
    )?;
    if rows.is_empty() {
        return writeln!(out, "no experiment changes");
    }
    writeln!(
        out,
        "fractions of eligible units (with a unit id, passing targeting in both); exact from the configs\n"
    )?;
    let w = rows
        .iter()
        .map(|r| r.diff.key.len())
        .max()
        .unwrap_or(10)
        .max(10);
    writeln!(
        out,
        "{:<w$}  {:<21}  {:<17}  {:>8}  {:>8}  {:>8}  VERDICT",
        "EXPERIMENT", "STATUS", "ENROLLED", "MOVED", "LEFT", "JOINED"
    )?;
    for r in rows {
        let e = r.diff;
        let st = |s: &Option<crate::safety::diff::Side>| {
            s.as_ref().map_or("-", |s| s.status.as_str()).to_string()
        };
        let en = |s: &Option<crate::safety::diff::Side>| {
            s.as_ref().map_or("-".to_string(), |s| pct(s.enrolled))
        };
        writeln!(
            out,
            "{:<w$}  {:<21}  {:<17}  {:>8}  {:>8}  {:>8}  {}",
            e.key,
            format!("{}->{}", st(&e.before), st(&e.after)),
            format!("{}->{}", en(&e.before), en(&e.after)),
            pct(e.impact.moved),
            pct(e.impact.left),
            pct(e.impact.joined),
            match r.judgement.verdict {
                Verdict::Safe => "safe",
                Verdict::Warn => "warn",
                Verdict::Acknowledged => "acknowledged",
                Verdict::Refused => "REFUSED",
            }
        )?;
        for c in &e.causes {
            writeln!(out, "    cause: {c}")?;
        }
        // A redraw's consequence is in the guard's reasons below; say it once.
        if e.impact.moved > 0.0 && !e.causes.iter().any(|c| c.redraws()) {
            let required = e.of_enrolled(e.impact.required_moved);
            let least = e.of_enrolled(e.impact.min_moved);
            if required < 5e-5 {
                writeln!(
                    out,
                    "    {} of enrolled units change variant (the variant weights did not change, so none had to)",
                    pct(e.moved_of_enrolled()),
                )?;
            } else {
                writeln!(
                    out,
                    "    {} of enrolled units change variant: the new variant weights move {} (no assignment method could move fewer than {})",
                    pct(e.moved_of_enrolled()),
                    pct(required),
                    pct(least)
                )?;
            }
        }
        for reason in &r.judgement.reasons {
            writeln!(out, "    {reason}")?;
        }
        if let Some(s) = &r.estimate {
            writeln!(
                out,
                "    estimate on {} synthetic units: moved {}, left {}, joined {}",
                s.samples,
                est(&s.moved),
                est(&s.left),
                est(&s.joined)
            )?;
        }
    }
    Ok(())
}

fn split_text(entries: &Option<Vec<Entry>>) -> String {
    match entries {
        None => "(computed)".into(),
        Some(v) => v
            .iter()
            .map(|e| format!("{} {}", e.variant, e.weight))
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

/// The flagd section of the table: one line per changed flag, its causes, and
/// each changed split with the fraction of units it moves.
fn write_flagd(out: &mut impl Write, args: &Args, flags: &[FlagdFlagDiff]) -> std::io::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    let form = match args.flagd_fractional {
        FractionalForm::V1 => "v1",
        FractionalForm::V2 => "v2",
        FractionalForm::V3 => "v3",
    };
    writeln!(
        out,
        "\nflagd flags (fractional form {form}; reported only: flagd has no epoch, nothing is refused)"
    )?;
    for f in flags {
        writeln!(out, "{}", f.key)?;
        for c in &f.causes {
            writeln!(out, "    cause: {c}")?;
        }
        for s in &f.splits {
            let fraction = match s.changed_fraction {
                Some(x) if s.exact => {
                    format!("{} of units reaching it change variant (exact)", pct(x))
                }
                Some(x) => format!("about {} of units reaching it change variant", pct(x)),
                None => "fraction not computed".into(),
            };
            write!(
                out,
                "    fractional #{}: {} -> {}: {fraction}",
                s.index + 1,
                split_text(&s.before),
                split_text(&s.after)
            )?;
            match &s.note {
                Some(n) => writeln!(out, "; {n}")?,
                None => writeln!(out)?,
            }
        }
    }
    Ok(())
}
