//! `cohortd analyze`: turn exposures and outcomes into a decision.
//!
//! Exit codes: 0 analysed, no rollback condition holds; 4 a rollback condition
//! of some experiment's `rollback.conditions` holds (rollback recommended: a
//! person or pipeline changes the config, cohortd never does); 5 a look beyond
//! `maxPeeks` was refused; 1 bad input (config, files, too many bad lines,
//! ledger); 2 usage.

use std::path::PathBuf;

use crate::analysis::evaluate::Settings;
use crate::analysis::plan::Spending;
use crate::analysis::{self, plot, Options, Source};

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number strictly between 0 and 1")),
    }
}

/// Arguments of `cohortd analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config directory (or file) the exposures were served from: its
    /// experiments' weights, metrics, evaluation and rollback settings. A flag
    /// only, since the positional arguments are the inputs.
    #[arg(
        long = "config-dir",
        short = 'c',
        value_name = "PATH",
        env = "COHORTD_CONFIG_DIR"
    )]
    config_dir: PathBuf,
    /// Exposure and outcome files: OTLP JSON lines (the Collector's file
    /// exporter), flat JSON lines, or .csv. Read twice (exposures, then outcomes).
    #[arg(
        value_name = "INPUT",
        required_unless_present = "stats",
        conflicts_with = "stats"
    )]
    inputs: Vec<PathBuf>,
    /// Per-variant statistics from sql/analysis_stats.sql instead of raw events.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw lifts with intervals and exposures per day to an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Only this experiment (repeatable). Default: every experiment with two or more variants.
    #[arg(long = "experiment", short = 'e', value_name = "KEY")]
    experiments: Vec<String>,
    /// The look ledger: numbers each look at experiments with evaluation.maxPeeks.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "cohortd-looks.json",
        env = "COHORTD_LOOK_LEDGER"
    )]
    ledger: PathBuf,
    /// Take a look beyond maxPeeks anyway (no alpha left: descriptive only; recorded as forced).
    #[arg(long)]
    force_look: bool,
    /// How alpha is spread over maxPeeks looks.
    #[arg(long, value_enum, default_value = "o-brien-fleming")]
    spending: Spending,
    /// Bad input lines tolerated (each is reported with file and line).
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_bad_lines: u64,
    /// Fraction of crossed-over units above which cohort integrity is flagged.
    #[arg(long, value_name = "FRACTION", default_value = "0.01", value_parser = fraction)]
    crossover_threshold: f64,
    /// Significance level of the sample-ratio-mismatch test.
    #[arg(long, value_name = "ALPHA", default_value = "0.001", value_parser = fraction)]
    srm_alpha: f64,
    /// Threads parsing JSON-lines input (default: one per core, at most 8;
    /// at most 32, since each keeps two chunks of 2 MiB in flight).
    /// The report is identical for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=32))]
    threads: Option<u16>,
}

/// Runs `analyze`; returns the exit code.
pub fn run(args: &Args) -> i32 {
    let source = match &args.stats {
        Some(s) => Source::Stats(s.clone()),
        None => Source::Events(args.inputs.clone()),
    };
    let opts = Options {
        config: args.config_dir.clone(),
        source,
        experiments: args.experiments.clone(),
        ledger: args.ledger.clone(),
        force_look: args.force_look,
        spending: args.spending,
        max_bad_lines: args.max_bad_lines,
        threads: args
            .threads
            .map_or_else(analysis::input::default_threads, usize::from),
        settings: Settings {
            crossover_threshold: args.crossover_threshold,
            srm_alpha: args.srm_alpha,
            ..Settings::default()
        },
    };
    let report = match analysis::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cohortd analyze: {e}");
            return i32::from(e.exit_code());
        }
    };
    if let Some(path) = &args.plot {
        if let Err(e) = plot::write_svg(path, &report.experiments) {
            eprintln!("cohortd analyze: {e}");
            return 1;
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("cohortd analyze: cannot encode the report: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    if report.rollback_recommended {
        4
    } else {
        0
    }
}
