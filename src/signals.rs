//! The process signals `cohortd serve` acts on.
//!
//! - `SIGTERM`, `SIGINT`: graceful shutdown (see [`crate::shutdown`]).
//! - `SIGHUP`: reload the config directory now, skipping the debounce and the
//!   settle interval. Operators send HUP meaning "reload"; without a handler its
//!   default action would kill the process with no log and no exposure flush.
//! - `SIGPIPE`: ignored. The Rust runtime sets it to `SIG_IGN` before `main`, so a
//!   write to a closed stderr or socket fails with `EPIPE` (which the log writer
//!   and the servers treat as an I/O error) instead of killing the process. We
//!   install no handler that would change that; `tests/hardening_signals.rs`
//!   checks it against the real binary.
//!
//! Install the handlers *before* the listeners bind: until a handler is
//! registered the default action applies and a signal kills the process at once.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a received signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Reload the config now (SIGHUP).
    Reload,
    /// Shut down gracefully; the signal's name, for the log.
    Stop(&'static str),
}

/// The registered handlers.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Registers the handlers (inside a tokio runtime).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Completes on the next signal.
    pub async fn recv(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop("SIGTERM"),
            _ = self.int.recv() => Request::Stop("SIGINT"),
            _ = self.hup.recv() => Request::Reload,
        }
    }
}
