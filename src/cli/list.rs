//! `cohortd list`: what a config holds (key, status, traffic, variants), as a
//! table or JSON. A running sidecar serves the same JSON at `/experiments`.

use crate::snapshot::schedule::unix_now;
use crate::Snapshot;

/// Arguments of `cohortd list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    /// Print JSON (the same document as the admin port's /experiments).
    #[arg(long)]
    json: bool,
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    let snap = match Snapshot::load(args.config.path()) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("the config is invalid; `cohortd validate` lists every problem");
            return 1;
        }
    };
    let listing = snap.listing(unix_now());
    if args.json {
        match serde_json::to_string_pretty(&listing) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
        return 0;
    }
    println!("version {}", listing.version);
    let width = listing
        .experiments
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0)
        .max("KEY".len());
    println!(
        "{:<width$}  {:<9}  {:>7}  VARIANTS",
        "KEY", "STATUS", "TRAFFIC"
    );
    for e in &listing.experiments {
        let traffic = format!(
            "{}%{}",
            (e.traffic_allocation * 10_000.0).round() / 100.0,
            if e.ramp { "*" } else { "" }
        );
        let mut variants = e.variants.join(", ");
        if let Some(w) = e.winner {
            variants.push_str(&format!(" (winner: {w})"));
        }
        println!(
            "{:<width$}  {:<9}  {:>7}  {variants}",
            e.key, e.status, traffic
        );
    }
    if listing.experiments.iter().any(|e| e.ramp) {
        println!("* ramp schedule: the traffic in force now");
    }
    0
}
