//! Freeing replaced snapshots on a thread of their own, off the reload's path.
//!
//! Freeing 10,000 experiments takes about 20 ms (`benches/tools/reload_time.rs`),
//! a fifth of such a reload; done on the reload thread, it delays the reload's
//! outcome and the next reload of a storm. Readers hold a snapshot for one request,
//! so the reaper first waits (at most a second) for the last of them, so that a
//! request never pays for the free; after that the last reader frees it after all.
//!
//! One reaper thread for the process, started on first use, fed through a channel
//! of [`QUEUE`] snapshots: when it is full (a storm of large reloads faster than
//! the reaper frees) or the thread cannot be started, the reload thread frees the
//! snapshot itself, as before, so replaced snapshots never pile up in memory.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Snapshot;

/// Replaced snapshots waiting to be freed, at most.
pub const QUEUE: usize = 2;

/// How long the reaper waits for a snapshot's last reader, at most.
const READER_WAIT: Duration = Duration::from_secs(1);

/// The reaper's queue; `None` when its thread could not be started.
fn queue() -> Option<&'static SyncSender<Arc<Snapshot>>> {
    static QUEUE_TX: OnceLock<Option<SyncSender<Arc<Snapshot>>>> = OnceLock::new();
    QUEUE_TX
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Arc<Snapshot>>(QUEUE);
            std::thread::Builder::new()
                .name("cohortd-reaper".into())
                .spawn(move || {
                    // Freeing a snapshot is as little urgent as building one.
                    super::background::lower_priority();
                    for snap in rx {
                        free_when_unread(snap);
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Hands `previous` to the reaper thread, or frees it here when the reaper's
/// queue is full or it has no thread.
pub fn release(previous: Arc<Snapshot>) {
    let rejected = match queue() {
        Some(tx) => match tx.try_send(previous) {
            Ok(()) => None,
            Err(TrySendError::Full(s) | TrySendError::Disconnected(s)) => Some(s),
        },
        None => Some(previous),
    };
    if let Some(s) = rejected {
        free_when_unread(s);
    }
}

/// Waits (at most [`READER_WAIT`]) until no reader holds `previous`, then frees it.
fn free_when_unread(previous: Arc<Snapshot>) {
    let step = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    while Arc::strong_count(&previous) > 1 && waited < READER_WAIT {
        std::thread::sleep(step);
        waited += step;
    }
    drop(previous);
    // A snapshot is the largest thing the sidecar frees: give its pages back.
    crate::transport::mem_return::request();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_snapshot_is_freed_once_its_readers_are_done() {
        let snap = Arc::new(Snapshot::compile(&[]).expect("an empty config compiles"));
        let weak = Arc::downgrade(&snap);
        let reader = Arc::clone(&snap);
        release(snap);
        std::thread::sleep(Duration::from_millis(20));
        assert!(weak.upgrade().is_some(), "a reader still holds it");
        drop(reader);
        let mut freed = false;
        for _ in 0..500 {
            if weak.upgrade().is_none() {
                freed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(freed, "the reaper frees it after its last reader");
    }
}
