//! `cohortd assign`: offline assignment of JSON-lines contexts.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::{Assignment, EvalOptions};
use crate::Snapshot;

/// Arguments of `cohortd assign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// The experiment to assign (or --all for every served experiment).
    #[arg(long, short = 'e', value_name = "KEY", conflicts_with = "all")]
    experiment: Option<String>,
    /// Assign every served experiment; each output line holds all of them.
    #[arg(long)]
    all: bool,
    /// Evaluate ramp schedules at this RFC 3339 time (e.g. when a unit was first
    /// exposed) instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
}

/// One assignment as written by the CLI. In `--all` lines the experiment key is the
/// map key and the version is written once per line, so both are omitted here.
#[derive(Serialize)]
struct One<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a Value>,
    variant: &'a str,
    value: &'a Value,
    enrolled: bool,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    epoch: u32,
    #[serde(rename = "saltFingerprint")]
    salt_fingerprint: &'a str,
}

fn one<'a>(a: &Assignment<'a>, ctx: &'a Map<String, Value>, version: Option<&'a str>) -> One<'a> {
    One {
        experiment: version.map(|_| &*a.experiment.key),
        unit: ctx.get(&*a.experiment.hash_key),
        variant: &a.variant.key,
        value: &a.variant.value,
        enrolled: a.enrolled,
        reason: a.reason.as_str(),
        version,
        epoch: a.experiment.epoch,
        salt_fingerprint: &a.experiment.salt_fingerprint,
    }
}

/// An `--all` line: `{"version": ..., "assignments": {"<key>": {...}, ...}}`,
/// serialized straight from the evaluations without collecting them first.
struct AllLine<'a> {
    snap: &'a Snapshot,
    ctx: &'a Map<String, Value>,
    opts: EvalOptions<'a>,
}

impl Serialize for AllLine<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut line = s.serialize_struct("AllLine", 2)?;
        line.serialize_field("version", self.snap.version())?;
        line.serialize_field("assignments", &AllAssignments(self))?;
        line.end()
    }
}

struct AllAssignments<'a>(&'a AllLine<'a>);

impl Serialize for AllAssignments<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let AllLine { snap, ctx, opts } = self.0;
        let mut map = s.serialize_map(None)?;
        for e in snap.served() {
            let a = e.evaluate(*ctx, *opts, &mut ());
            map.serialize_entry(&*e.key, &one(&a, ctx, None))?;
        }
        map.end()
    }
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    if args.experiment.is_none() && !args.all {
        eprintln!(
            "error: say which experiment to assign: -e KEY for one, or --all for every served experiment (`cohortd list` shows the keys)"
        );
        return 2;
    }
    let snap = match Snapshot::load(args.config.path()) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return 1;
        }
    };
    if let Some(key) = &args.experiment {
        if let Err(e) = snap.assign(key, &crate::engine::context::Empty, EvalOptions::default()) {
            eprintln!("error: {e}{}", snap.did_you_mean(key));
            return 1;
        }
    }
    let now = match args
        .at
        .as_deref()
        .map(crate::snapshot::schedule::parse_time)
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --at is not an RFC 3339 time: {e}");
            return 1;
        }
    };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match assign_stream_at(&snap, args.experiment.as_deref(), now, stdin, stdout) {
        Ok(0) => 0,
        Ok(bad) => {
            eprintln!("error: {bad} input line(s) were blank or not JSON objects; see the \"error\" lines in the output");
            1
        }
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Assigns every line of `input`, writing one JSON line per input line (an
/// `{"error": ...}` line for input that is not a JSON object, so output lines stay
/// aligned with input lines). Returns the number of bad lines.
pub fn assign_stream(
    snap: &Snapshot,
    experiment: Option<&str>,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<usize> {
    assign_stream_at(snap, experiment, None, input, output)
}

/// [`assign_stream`] with ramp schedules evaluated at `now` (Unix seconds; `None`
/// reads the clock), to reconstruct the cohort at a past or future time.
pub fn assign_stream_at(
    snap: &Snapshot,
    experiment: Option<&str>,
    now: Option<i64>,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<usize> {
    let opts = EvalOptions {
        now_unix_secs: now,
        ..EvalOptions::default()
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, output);
    let mut input = input;
    let mut bad = 0;
    let version = snap.version();
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        n += 1;
        // A blank line gets an error line too: output line N always answers input
        // line N, so the two files can be pasted side by side.
        let parsed = if line.trim().is_empty() {
            Err("the line is blank".to_owned())
        } else {
            serde_json::from_str::<Map<String, Value>>(&line).map_err(|e| e.to_string())
        };
        let ctx = match parsed {
            Ok(c) => c,
            Err(e) => {
                bad += 1;
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({"error": format!("line {n}: expected a JSON object: {e}")}),
                )?;
                out.write_all(b"\n")?;
                continue;
            }
        };
        match experiment {
            Some(key) => {
                // The key was checked before reading input; a miss here cannot happen.
                if let Ok(a) = snap.assign(key, &ctx, opts) {
                    serde_json::to_writer(&mut out, &one(&a, &ctx, Some(version)))?;
                }
            }
            None => serde_json::to_writer(
                &mut out,
                &AllLine {
                    snap,
                    ctx: &ctx,
                    opts,
                },
            )?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(bad)
}
