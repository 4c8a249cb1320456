//! What the flagd protocol adds on top of the engine: the resolution in-process
//! (type conversion, reason mapping, metadata) and a full gRPC round trip over
//! loopback with a tonic v2 client, next to the bare engine assignment.
//!
//! Run: `cargo bench --bench flagd_protocol`

use std::sync::Arc;

use cohortd::config::{parse_sources, RawFile};
use cohortd::engine::EvalOptions;
use cohortd::exposure::NoopSink;
use cohortd::reload::Store;
use cohortd::transport::flagd::pb_v2 as v2;
use cohortd::transport::flagd::resolve::{Resolver, ValueType};
use cohortd::transport::flagd::services;
use cohortd::transport::limits::Limits;
use cohortd::Snapshot;
use criterion::{criterion_group, criterion_main, Criterion};
use prost_types::value::Kind;
use prost_types::{Struct, Value};
use tokio_stream::wrappers::TcpListenerStream;

const CONFIG: &str = r#"
experiments:
  - key: greeting
    status: running
    variants:
      - {key: en, value: "hello"}
      - {key: fr, value: "bonjour"}
"#;

fn store() -> Arc<Store> {
    let files = vec![RawFile {
        path: "b.yaml".into(),
        bytes: CONFIG.as_bytes().to_vec(),
    }];
    let store = Store::new();
    store.install(Snapshot::compile(&parse_sources(&files).unwrap()).unwrap());
    store
}

fn context() -> Struct {
    let mut s = Struct::default();
    s.fields.insert(
        "targetingKey".into(),
        Value {
            kind: Some(Kind::StringValue("user-12345".into())),
        },
    );
    s
}

fn bench(c: &mut Criterion) {
    let store = store();
    let ctx = context();
    let snap = store.load().unwrap();
    c.bench_function("flagd/engine_assign_only", |b| {
        b.iter(|| {
            snap.assign("greeting", &ctx, EvalOptions::default())
                .unwrap()
                .variant
                .key
                .len()
        })
    });
    let resolver = Resolver::new(store.clone(), Arc::new(NoopSink), Limits::default());
    c.bench_function("flagd/resolve_string_in_process", |b| {
        b.iter(|| {
            resolver
                .resolve("greeting", Some(&ctx), ValueType::String, false, None)
                .unwrap()
        })
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut client = rt.block_on(async {
        let (_v1, v2s) = services(store.clone(), Arc::new(NoopSink));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(v2s)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        v2::service_client::ServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    });
    c.bench_function("flagd/grpc_v2_resolve_string_loopback", |b| {
        b.iter(|| {
            rt.block_on(client.resolve_string(v2::ResolveStringRequest {
                flag_key: "greeting".into(),
                context: Some(ctx.clone()),
            }))
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
