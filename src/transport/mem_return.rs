//! Giving a burst's memory back to the system once its connections have closed.
//!
//! glibc malloc keeps what a burst of connections and streams freed in its
//! arenas: after 2,000 connections or 20,000 streams RSS stayed at 3.3x its idle
//! level for good (`benches/rss_churn.sh`, docs/benchmarks.md), because the free
//! memory is not at the top of a heap, so the automatic trim never reaches it;
//! `malloc_trim(0)` does (it returns every free page of every arena).
//!
//! When the open connections of all listeners drop to [`LOW_WATER`] after at
//! least [`BURST`] connections have closed since the last return, the closing
//! connection signals the return thread (a non-blocking send into a channel of
//! one: nothing waits, nothing allocates, repeated signals merge). That thread
//! waits [`SETTLE`] for the closing tasks to free their buffers, calls the
//! function the binary registered with [`set_return_fn`] (the library has no
//! `unsafe`, so the libc call lives in `main.rs`), and then rests for [`MIN_GAP`]
//! so a sidecar whose clients reconnect in a loop trims at most that often.
//! Without a registered function (tests, another allocator) nothing happens.
//! Reloads ask for a return too ([`request`]): after the first config is built,
//! and after the reaper frees a replaced snapshot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

/// Open connections (all listeners) at or under which a return may start.
pub const LOW_WATER: usize = 4;
/// Connections closed since the last return that make a burst worth returning.
pub const BURST: usize = 64;
/// Time for the closing connections' tasks to free their memory.
pub const SETTLE: Duration = Duration::from_secs(1);
/// Least time between two returns.
pub const MIN_GAP: Duration = Duration::from_secs(10);

static OPEN: AtomicUsize = AtomicUsize::new(0);
static CLOSED: AtomicUsize = AtomicUsize::new(0);
static RETURN_FN: OnceLock<fn()> = OnceLock::new();

/// Registers the function that returns free memory to the system (the binary's
/// `malloc_trim(0)` under glibc). The first registration wins.
pub fn set_return_fn(f: fn()) {
    let _ = RETURN_FN.set(f);
}

/// The return thread's signal, started on first use; `None` without a
/// registered function or when the thread cannot be started.
fn signal() -> Option<&'static SyncSender<()>> {
    static TX: OnceLock<Option<SyncSender<()>>> = OnceLock::new();
    TX.get_or_init(|| {
        let f = *RETURN_FN.get()?;
        let (tx, rx) = sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("cohortd-mem-return".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    std::thread::sleep(SETTLE);
                    // Signals that came while settling are this same burst.
                    while rx.try_recv().is_ok() {}
                    f();
                    std::thread::sleep(MIN_GAP);
                }
            })
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

/// A connection was admitted.
pub fn opened() {
    OPEN.fetch_add(1, Ordering::Relaxed);
}

/// A connection closed: signals a return when this ends a burst.
pub fn closed() {
    let open = OPEN.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
    let closed = CLOSED.fetch_add(1, Ordering::Relaxed) + 1;
    if ends_burst(open, closed) && RETURN_FN.get().is_some() {
        CLOSED.store(0, Ordering::Relaxed);
        if let Some(tx) = signal() {
            let _ = tx.try_send(());
        }
    }
}

/// Much memory was just freed off the request path (a replaced snapshot, the
/// scratch of the startup load): return it like a burst's, on the same thread,
/// after [`SETTLE`] and at most once per [`MIN_GAP`]. Without it the free pages
/// of building the first snapshot stay resident for good: 1.8 MiB of an idle
/// sidecar's 21 MiB with 1,000 experiments (`benches/rss_churn.sh`).
pub fn request() {
    if RETURN_FN.get().is_some() {
        if let Some(tx) = signal() {
            let _ = tx.try_send(());
        }
    }
}

/// Whether a close that leaves `open_after` connections open, `closed` closes
/// after the last return, ends a burst.
fn ends_burst(open_after: usize, closed: usize) -> bool {
    open_after <= LOW_WATER && closed >= BURST
}

#[cfg(test)]
mod tests {
    use super::*;

    static RETURNS: AtomicUsize = AtomicUsize::new(0);

    fn count_return() {
        RETURNS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn only_a_burst_that_drains_to_the_low_water_mark_ends() {
        assert!(!ends_burst(LOW_WATER + 1, BURST * 10), "still busy");
        assert!(!ends_burst(0, BURST - 1), "too few closes to be worth it");
        assert!(ends_burst(LOW_WATER, BURST));
        assert!(ends_burst(0, BURST));
    }

    #[test]
    fn a_burst_of_closes_returns_memory_once() {
        set_return_fn(count_return);
        for _ in 0..BURST {
            opened();
        }
        for _ in 0..BURST {
            closed();
        }
        let mut returned = 0;
        for _ in 0..300 {
            returned = RETURNS.load(Ordering::Relaxed);
            if returned > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(returned, 1, "one return after the settle time");
    }
}
