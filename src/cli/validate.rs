//! `cohortd validate`: report every config problem, or summarise a valid config.

use crate::config::Status;
use crate::Snapshot;

/// Arguments of `cohortd validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the config is.
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Accept a config with no experiments (otherwise an error: an empty
    /// directory is usually a volume mounted at the wrong path).
    #[arg(long)]
    pub allow_empty: bool,
}

/// Runs the command; returns the process exit code.
pub fn run(args: &Args) -> i32 {
    let path = args.config.path();
    match Snapshot::load(path) {
        Ok(s) if s.experiments().is_empty() && s.flagd().is_empty() && !args.allow_empty => {
            eprintln!(
                "error: {}: no experiments or flagd flags found (cohortd reads *.json, *.yaml and *.yml files); a sidecar would serve nothing",
                path.display()
            );
            eprintln!("pass --allow-empty if an empty config is intended");
            1
        }
        Ok(s) if s.experiments().is_empty() && !s.flagd().is_empty() => {
            print_flagd(&s);
            println!("in {}, version {}", path.display(), s.version());
            0
        }
        Ok(s) => {
            let count = |st: Status| s.experiments().iter().filter(|e| e.status == st).count();
            println!(
                "ok: {} experiments ({} running, {} draft, {} paused/stopped/completed) in {}, version {}",
                s.experiments().len(),
                count(Status::Running),
                count(Status::Draft),
                s.experiments().len() - count(Status::Running) - count(Status::Draft),
                path.display(),
                s.version()
            );
            print_flagd(&s);
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

/// One line for the flagd-format flags, when there are any: how many, how many
/// are disabled or split with `fractional`, and from how many files.
fn print_flagd(s: &Snapshot) {
    let set = s.flagd();
    if set.is_empty() {
        return;
    }
    let flags = set.flags();
    let disabled = flags
        .iter()
        .filter(|f| f.state == crate::config::flagd::FlagdState::Disabled)
        .count();
    let fractional = flags.iter().filter(|f| f.uses_fractional).count();
    println!(
        "ok: {} flagd flags ({} disabled, {} with fractional) from {} file{}",
        flags.len(),
        disabled,
        fractional,
        set.sources().len(),
        if set.sources().len() == 1 { "" } else { "s" }
    );
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
