//! `cohortd schema`: print the JSON Schema of the config format.

/// Arguments of `cohortd schema` (none).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command; returns the process exit code.
pub fn run(_: &Args) -> i32 {
    use std::io::Write;
    match std::io::stdout().write_all(crate::config::schema::schema_text().as_bytes()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
