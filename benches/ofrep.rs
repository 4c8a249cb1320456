//! What OFREP costs per evaluation: the router in-process (body parse, context
//! conversion, resolution, JSON encoding; bulk adds the ETag hash), and a full
//! single-flag HTTP/1.1 round trip over a loopback keep-alive connection.
//!
//! Run: `cargo bench --bench ofrep`

use std::sync::Arc;

use axum::body::Body;
use cohortd::config::{parse_sources, RawFile};
use cohortd::exposure::NoopSink;
use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::transport::limits::Limits;
use cohortd::transport::ofrep;
use cohortd::Snapshot;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tower::ServiceExt;

const CONFIG: &str = r#"
experiments:
  - key: greeting
    status: running
    variants:
      - {key: en, value: "hello"}
      - {key: fr, value: "bonjour"}
"#;

const BODY: &str = r#"{"context":{"targetingKey":"user-12345","plan":"pro"}}"#;

fn router() -> axum::Router {
    let files = vec![RawFile {
        path: "b.yaml".into(),
        bytes: CONFIG.as_bytes().to_vec(),
    }];
    let store = Store::new();
    store.install(Snapshot::compile(&parse_sources(&files).unwrap()).unwrap());
    ofrep::router(
        store,
        Arc::new(NoopSink),
        Limits::default(),
        &Metrics::new(),
    )
}

fn request(path: &str) -> http::Request<Body> {
    http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap()
}

async fn call(app: &axum::Router, path: &str) -> usize {
    let resp = app.clone().oneshot(request(path)).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = router();
    c.bench_function("ofrep single, in-process router", |b| {
        b.iter(|| rt.block_on(call(&app, "/ofrep/v1/evaluate/flags/greeting")))
    });
    c.bench_function("ofrep bulk (1 flag), in-process router", |b| {
        b.iter(|| rt.block_on(call(&app, "/ofrep/v1/evaluate/flags")))
    });

    // A real listener and one keep-alive connection.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    let stream = rt.block_on(tokio::net::TcpStream::connect(addr)).unwrap();
    stream.set_nodelay(true).unwrap();
    let req = format!(
        "POST /ofrep/v1/evaluate/flags/greeting HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut conn = BufReader::new(stream);
    c.bench_function("ofrep single, HTTP/1.1 round trip over loopback", |b| {
        b.iter(|| {
            rt.block_on(async {
                conn.get_mut().write_all(req.as_bytes()).await.unwrap();
                let mut len = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    conn.read_line(&mut line).await.unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                conn.read_exact(&mut body).await.unwrap();
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
