//! The `cohortd` binary: parses the command line and hands off to [`cohortd::cli`].

use clap::Parser;
use cohortd::cli::{Cli, Command};

/// mimalloc instead of glibc malloc (feature `mimalloc`, off by default): glibc
/// keeps the memory of a burst of connections and streams in its per-thread
/// arenas, so RSS stays at the high-water mark (`benches/rss_churn.sh`, numbers in
/// docs/benchmarks.md). Whether mimalloc brings it back within 1.5x of idle is not
/// measured yet, which is why it is not the default.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Serve(a) => cohortd::cli::serve::run(a),
        Command::Validate(a) => cohortd::cli::validate::run(a),
        Command::Assign(a) => cohortd::cli::assign::run(a),
        Command::Diff(a) => cohortd::cli::diff::run(a),
        Command::List(a) => cohortd::cli::list::run(a),
        Command::Schema(a) => cohortd::cli::schema::run(a),
        Command::Analyze(a) => cohortd::cli::analyze::run(a),
    };
    std::process::exit(code);
}
