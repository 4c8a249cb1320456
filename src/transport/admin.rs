//! The management HTTP port: `/healthz` (the process is alive), `/readyz` (a
//! config is served; the body says which, and the last reload error), and
//! `/metrics` (Prometheus text), and `/experiments` (what is served: key,
//! status, traffic and variants of each experiment, as `cohortd list --json`).
//!
//! It listens on loopback by default, apart from the gRPC port, so probes and
//! scrapes never queue behind application traffic.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The management routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/experiments", get(experiments))
        .with_state(state.clone())
        .merge(health_router(state))
}

/// `/healthz` and `/readyz` alone (also served by the probe listener).
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when a config is served and the server is not shutting down, else 503.
/// The JSON body is the readiness detail either way.
async fn readyz(State(state): State<AppState>) -> Response {
    let snap = state.store.load();
    let status = state.store.status();
    let shutting_down = state.shutdown.is_fired();
    let ready = snap.is_some() && !shutting_down;
    let mut body = serde_json::json!({
        "ready": ready,
        "shutting_down": shutting_down,
        "version": snap.as_ref().map(|s| s.version()),
        "experiments": snap.as_ref().map_or(0, |s| s.experiments().len()),
        "served_experiments": snap.as_ref().map_or(0, |s| s.served().count()),
        "reloads": {
            "applied": status.applied,
            "unchanged": status.unchanged,
            "rejected": status.rejected,
        },
        "last_reload_error": status.last_error,
        "last_reload_warnings": {
            "total": status.last_warnings.total,
            "items": status.last_warnings.items,
        },
    });
    // `tls` (rotation status: a refused rotation shows here), `auth`, `ingest`.
    if let (Some(b), serde_json::Value::Object(sec)) =
        (body.as_object_mut(), state.security.status_json())
    {
        b.extend(sec);
    }
    if snap.as_ref().is_some_and(|s| s.experiments().is_empty()) {
        // A valid but empty config is usually a volume mounted at the wrong path.
        body["warning"] = "the config holds no experiments: nothing is served (is the volume mounted at --config-dir?)".into();
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut text = body.to_string();
    text.push('\n');
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// The experiments served, as `cohortd list --json` prints them; 503 with a
/// JSON error before a config has loaded.
async fn experiments(State(state): State<AppState>) -> Response {
    let (code, text) = match state.store.load() {
        Some(snap) => {
            let listing = snap.listing(crate::snapshot::schedule::unix_now());
            (StatusCode::OK, serde_json::to_string(&listing))
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::to_string(&serde_json::json!({
                "error": "no config loaded yet; see /readyz",
            })),
        ),
    };
    let mut text = text.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}
