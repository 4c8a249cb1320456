//! flagd's `EventStream`: what RPC-mode providers listen to for readiness and
//! cache invalidation.
//!
//! A stream sends `provider_ready` as soon as a config is loaded (at once, in a
//! running sidecar), then a `configuration_change` after every applied reload
//! whose data is `{"flags": {key: {"type": "write" | "update" | "delete"}}}` as
//! flagd sends it (providers drop those keys from their caches and emit
//! PROVIDER_CONFIGURATION_CHANGED), and a `keep_alive` whenever the stream has been
//! idle for the configured period.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::reload::{ReloadEvent, Store};

/// The event type strings flagd uses.
pub mod kind {
    /// The provider may evaluate.
    pub const PROVIDER_READY: &str = "provider_ready";
    /// Flags changed; the data lists them.
    pub const CONFIGURATION_CHANGE: &str = "configuration_change";
    /// Nothing happened; the stream is alive.
    pub const KEEP_ALIVE: &str = "keep_alive";
}

/// flagd's per-flag change types.
mod change {
    pub const CREATE: &str = "write";
    pub const UPDATE: &str = "update";
    pub const DELETE: &str = "delete";
}

/// Makes a future that completes when event streams must end (server shutdown).
/// A function rather than a future so each stream gets its own.
pub type StopSignal = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Events buffered per stream before the pump waits for the client.
const BUFFER: usize = 16;

/// Starts one event stream. `make` builds the version-specific message from an
/// event type and its optional data. The pump task ends when the client goes away
/// or `stop` fires (the stream then ends cleanly).
pub fn stream<M, F>(
    store: Arc<Store>,
    keep_alive: Duration,
    stop: Option<&StopSignal>,
    make: F,
) -> ReceiverStream<Result<M, Status>>
where
    M: Send + 'static,
    F: Fn(&'static str, Option<Struct>) -> M + Send + 'static,
{
    let (tx, rx) = mpsc::channel(BUFFER);
    let stop = stop.map(|s| s());
    tokio::spawn(until_stopped(pump(store, keep_alive, tx, make), stop));
    ReceiverStream::new(rx)
}

/// Runs a stream's producer until it ends or `stop` (the server's shutdown,
/// taken when the stream was opened) fires.
pub(super) async fn until_stopped(run: impl Future<Output = ()>, stop: Option<impl Future>) {
    match stop {
        Some(stop) => {
            tokio::select! {
                _ = run => {}
                _ = stop => {}
            }
        }
        None => run.await,
    }
}

async fn pump<M, F>(
    store: Arc<Store>,
    keep_alive: Duration,
    tx: mpsc::Sender<Result<M, Status>>,
    make: F,
) where
    F: Fn(&'static str, Option<Struct>) -> M,
{
    // Subscribe before looking at the store so no reload slips between the two.
    let mut reloads = store.subscribe();
    while store.load().is_none() {
        tokio::select! {
            _ = tx.closed() => return,
            r = reloads.recv() => if let Err(broadcast::error::RecvError::Closed) = r { return },
        }
    }
    if tx.send(Ok(make(kind::PROVIDER_READY, None))).await.is_err() {
        return;
    }
    // A zero period would spin; clamp it to something sane.
    let period = keep_alive.max(Duration::from_millis(10));
    loop {
        let msg = tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(period) => make(kind::KEEP_ALIVE, None),
            r = reloads.recv() => match r {
                Ok(ev) => match change_data(&ev) {
                    Some(data) => make(kind::CONFIGURATION_CHANGE, Some(data)),
                    None => continue,
                },
                // Missed reloads: report every current flag as updated.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let Some(snap) = store.load() else { continue };
                    let keys: Vec<String> =
                        snap.experiments().iter().map(|e| e.key.to_string()).collect();
                    let ev = ReloadEvent {
                        version: snap.version().to_owned(),
                        changed: keys,
                        ..Default::default()
                    };
                    match change_data(&ev) {
                        Some(data) => make(kind::CONFIGURATION_CHANGE, Some(data)),
                        None => continue,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(Ok(msg)).await.is_err() {
            return;
        }
    }
}

/// The `configuration_change` data for a reload, or `None` when no flag changed
/// (e.g. only an unused segment was edited).
pub fn change_data(ev: &ReloadEvent) -> Option<Struct> {
    let mut flags = Struct::default();
    for (keys, ty) in [
        (&ev.added, change::CREATE),
        (&ev.changed, change::UPDATE),
        (&ev.removed, change::DELETE),
    ] {
        for k in keys {
            let mut entry = Struct::default();
            entry.fields.insert(
                "type".into(),
                Value {
                    kind: Some(Kind::StringValue(ty.into())),
                },
            );
            flags.fields.insert(
                k.clone(),
                Value {
                    kind: Some(Kind::StructValue(entry)),
                },
            );
        }
    }
    if flags.fields.is_empty() {
        return None;
    }
    let mut data = Struct::default();
    data.fields.insert(
        "flags".into(),
        Value {
            kind: Some(Kind::StructValue(flags)),
        },
    );
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_data_lists_flags_by_change_type() {
        let ev = ReloadEvent {
            version: "v".into(),
            added: vec!["a".into()],
            changed: vec!["b".into()],
            removed: vec!["c".into()],
        };
        let data = change_data(&ev).unwrap();
        let Some(Kind::StructValue(flags)) = &data.fields["flags"].kind else {
            panic!("flags is not a struct")
        };
        let ty = |k: &str| match &flags.fields[k].kind {
            Some(Kind::StructValue(s)) => match &s.fields["type"].kind {
                Some(Kind::StringValue(t)) => t.clone(),
                other => panic!("type is {other:?}"),
            },
            other => panic!("entry is {other:?}"),
        };
        assert_eq!(
            (ty("a"), ty("b"), ty("c")),
            ("write".into(), "update".into(), "delete".into())
        );
        assert!(change_data(&ReloadEvent::default()).is_none());
    }
}
