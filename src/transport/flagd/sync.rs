//! flagd's in-process sync service (`flagd.sync.v1.FlagSyncService`): in-process
//! providers fetch the flag definitions and evaluate them themselves.
//!
//! Only flagd-format flags are sent. cohortd experiments bucket with cohortd's
//! own hashing, which flagd's in-process evaluators do not implement, so sending
//! them would make in-process answers differ from RPC answers.
//!
//! `SyncFlags` sends the whole flag set at connect (once a config is loaded) and
//! again after every applied reload; `FetchAllFlags` sends it once. A selector
//! (the `Flagd-Selector` header, else the deprecated `selector` field, as flagd
//! reads them) restricts the set to one source file or one flag set
//! ([`crate::snapshot::selector`]); a source that names no flagd file is
//! refused with NOT_FOUND, so a typo is not mistaken for an empty set.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::events::{until_stopped, StopSignal};
use crate::reload::Store;
use crate::Snapshot;

/// Generated code for `proto/flagd/sync/v1` (flagd's sync wire contract).
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("flagd.sync.v1");
}

/// The header flagd reads a selector from (preferred over the request field).
pub const SELECTOR_HEADER: &str = "flagd-selector";

/// Configurations buffered per stream before the pump waits for the client.
const BUFFER: usize = 4;

/// The sync service over a store.
#[derive(Clone)]
pub struct FlagSync {
    store: Arc<Store>,
    stop: Option<StopSignal>,
}

impl FlagSync {
    /// Serves `store`; streams end when `stop` fires (server shutdown).
    pub fn new(store: Arc<Store>, stop: Option<StopSignal>) -> FlagSync {
        FlagSync { store, stop }
    }
}

/// The sync service, ready to add to a tonic router.
pub type SyncServer = pb::flag_sync_service_server::FlagSyncServiceServer<FlagSync>;

/// The selector of a request: the header, else the field; empty means none.
fn selector<T>(req: &Request<T>, field: &str) -> Option<String> {
    let header = req
        .metadata()
        .get(SELECTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    header
        .or(Some(field.trim()).filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// The flag configuration JSON for `selector`, or why there is none.
fn configuration(snap: &Snapshot, selector: Option<&str>) -> Result<String, Status> {
    let doc = snap.flagd().document(selector).ok_or_else(|| {
        let known: Vec<String> = snap
            .flagd()
            .sources()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        Status::not_found(format!(
            "selector `{}` names no flagd flag file (flagd files: {})",
            selector.unwrap_or_default(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })?;
    serde_json::to_string(&doc).map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl pb::flag_sync_service_server::FlagSyncService for FlagSync {
    type SyncFlagsStream = ReceiverStream<Result<pb::SyncFlagsResponse, Status>>;

    async fn sync_flags(
        &self,
        req: Request<pb::SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        #[allow(deprecated)]
        let selector = selector(&req, &req.get_ref().selector);
        // Subscribe before looking at the store so no reload slips between the two.
        let mut reloads = self.store.subscribe();
        // A selector naming no file is refused now, while the caller can see why.
        if let Some(snap) = self.store.load() {
            configuration(&snap, selector.as_deref())?;
        }
        let (tx, rx) = mpsc::channel(BUFFER);
        let store = self.store.clone();
        let stop = self.stop.as_ref().map(|s| s());
        let run = async move {
            let mut last: Option<String> = None;
            loop {
                if let Some(snap) = store.load() {
                    let msg = configuration(&snap, selector.as_deref());
                    // Unchanged for this selector (another file changed): nothing to send.
                    let same = matches!((&msg, &last), (Ok(m), Some(l)) if m == l);
                    if !same {
                        let end = msg.is_err();
                        let out = msg.map(|m| {
                            last = Some(m.clone());
                            pb::SyncFlagsResponse {
                                flag_configuration: m,
                                sync_context: None,
                            }
                        });
                        if tx.send(out).await.is_err() || end {
                            return;
                        }
                    }
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    r = reloads.recv() => match r {
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        };
        tokio::spawn(until_stopped(run, stop));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch_all_flags(
        &self,
        req: Request<pb::FetchAllFlagsRequest>,
    ) -> Result<Response<pb::FetchAllFlagsResponse>, Status> {
        #[allow(deprecated)]
        let selector = selector(&req, &req.get_ref().selector);
        let snap = self
            .store
            .load()
            .ok_or_else(|| Status::unavailable("cohortd has not loaded a configuration yet"))?;
        Ok(Response::new(pb::FetchAllFlagsResponse {
            flag_configuration: configuration(&snap, selector.as_deref())?,
        }))
    }

    #[allow(deprecated)]
    async fn get_metadata(
        &self,
        _: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        // flagd always sets `metadata` (its `--context-value`s and sources); the
        // Python provider's in-process connector reads `["metadata"]` from it
        // and fails to start when the field is absent. cohortd has no context
        // values: an empty, present Struct.
        Ok(Response::new(pb::GetMetadataResponse {
            metadata: Some(prost_types::Struct::default()),
        }))
    }
}
