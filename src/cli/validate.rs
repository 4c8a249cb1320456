//! `cohortd validate`: report every config problem, or summarise a valid config.

use std::path::PathBuf;

use crate::config::Status;
use crate::Snapshot;

/// Arguments of `cohortd validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of config files, or a single file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    match Snapshot::load(&args.path) {
        Ok(s) => {
            let count = |st: Status| s.experiments().iter().filter(|e| e.status == st).count();
            println!(
                "ok: {} experiments ({} running, {} draft, {} paused/stopped/completed) in {}, version {}",
                s.experiments().len(),
                count(Status::Running),
                count(Status::Draft),
                s.experiments().len() - count(Status::Running) - count(Status::Draft),
                args.path.display(),
                s.version()
            );
            print_ramps(&s);
            0
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{} problem{} found; nothing was loaded",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            1
        }
    }
}

/// One line per ramp schedule: every step, and which one is in force now.
fn print_ramps(s: &Snapshot) {
    use crate::snapshot::schedule::{format_time, unix_now};
    let now = unix_now();
    for e in s.experiments().iter().filter(|e| !e.schedule.is_empty()) {
        let mut steps = vec![format!(
            "{} before {}",
            e.config.traffic_allocation.unwrap_or(1.0),
            format_time(e.schedule[0].at)
        )];
        for (p, c) in e.schedule.iter().zip(&e.config.traffic_schedule) {
            steps.push(format!(
                "{} from {}",
                c.traffic_allocation,
                format_time(p.at)
            ));
        }
        println!(
            "ramp `{}`: {}; now {}",
            e.key,
            steps.join(", "),
            e.traffic_allocation_at(now)
        );
    }
}
