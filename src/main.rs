//! The `cohortd` binary: parses the command line and hands off to [`cohortd::cli`].

use clap::Parser;
use cohortd::cli::{Cli, Command};

// The allocator chosen by cargo feature (`cohortd::allocator`): jemalloc by
// default, which returns memory on its own background thread; glibc (built
// with `--no-default-features`) gets [`glibc_trim`] after bursts instead, which
// brings its RSS back to idle (`benches/rss_churn.sh`, docs/benchmarks.md).
cohortd::server_allocator!();

/// Returns the free memory of every glibc arena to the system. Called by
/// [`cohortd::transport::mem_return`] on its own thread after a burst of
/// connections has closed: without it RSS stays at the burst's high-water mark
/// (3.3x idle; with it back to about idle: docs/benchmarks.md, `rss_churn.sh`).
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    not(any(feature = "jemalloc", feature = "mimalloc"))
))]
fn glibc_trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: `malloc_trim` is glibc's (declared in <malloc.h> as
    // `int malloc_trim(size_t pad)`, which the declaration above matches: size_t
    // is usize, int is c_int on every Linux target). It takes no pointer, reads
    // no Rust memory, and is thread-safe: it takes each arena's lock as malloc
    // and free do, and only gives back pages that hold no allocation, so no
    // live Rust allocation is affected. This binary's global allocator is the
    // system one (glibc) whenever this function is compiled (not with the
    // `jemalloc` or `mimalloc` feature), so the arenas it trims are the ones Rust uses.
    unsafe {
        malloc_trim(0);
    }
}

fn main() {
    // `COHORTD_MALLOC_TRIM=off` keeps glibc's memory after a burst (to compare,
    // `benches/rss_churn.sh COHORTD_MALLOC_TRIM=off`); glibc builds only.
    #[cfg(all(
        target_os = "linux",
        target_env = "gnu",
        not(any(feature = "jemalloc", feature = "mimalloc"))
    ))]
    if std::env::var_os("COHORTD_MALLOC_TRIM").is_none_or(|v| v != "off") {
        cohortd::transport::mem_return::set_return_fn(glibc_trim);
    }
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
