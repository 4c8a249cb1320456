//! flagd.evaluation.v2 over the Connect protocol on the OFREP listener
//! (src/transport/flagd/connect.rs), spoken byte for byte as the reference
//! describes it: unary answers equal the gRPC listener's, errors carry the
//! reference's HTTP status and JSON code, an unknown codec is 415, and the
//! server-streaming EventStream sends enveloped `provider_ready`,
//! `configuration_change` after a reload, and the end-of-stream envelope when
//! the server shuts down. tests/clients_go.rs runs the real Go flagd provider
//! against the same endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use cohortd::config::RawFile;
use cohortd::exposure::NoopSink;
use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Listen, Running, ServeOptions};
use cohortd::transport::flagd::pb_v2 as v2;
use cohortd::Snapshot;
use prost::Message;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/flagd.evaluation.v2.Service";

fn flags(color_default: &str) -> Snapshot {
    let doc = json!({"flags": {
        "color": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"},
                  "defaultVariant": color_default,
                  "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", null]}},
    }});
    Snapshot::from_raw(&[RawFile {
        path: "/cfg/flags.json".into(),
        bytes: doc.to_string().into_bytes(),
    }])
    .unwrap()
}

async fn start(store: Arc<Store>) -> Running {
    let opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        ofrep_listen: Some("127.0.0.1:0".parse().unwrap()),
        sync_listen: None,
        ..ServeOptions::default()
    };
    cohortd::server::start(opts, store, Arc::new(NoopSink), Metrics::new())
        .await
        .unwrap()
}

/// One HTTP/1.1 request; the whole response: status, headers (lower-cased
/// text), body.
async fn post(addr: SocketAddr, path: &str, ctype: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    split(&out)
}

fn split(out: &[u8]) -> (u16, String, Vec<u8>) {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, out[end + 4..].to_vec())
}

/// A chunked HTTP/1.1 body, de-chunked.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

/// Connect envelopes: (flags, payload).
fn envelopes(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        out.push((b[0], b[5..5 + n].to_vec()));
        b = &b[5 + n..];
    }
    out
}

fn string_request(key: &str, plan: &str) -> Vec<u8> {
    let ctx: prost_types::Struct = prost_types::Struct {
        fields: [(
            "plan".to_string(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(plan.into())),
            },
        )]
        .into(),
    };
    v2::ResolveStringRequest {
        flag_key: key.into(),
        context: Some(ctx),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn unary_calls_answer_as_grpc_and_errors_carry_connect_codes() {
    let store = Store::new();
    store.install(flags("red"));
    let srv = start(store).await;
    let addr = srv.ofrep_addr.unwrap();
    let (st, head, body) = post(
        addr,
        &format!("{PATH}/ResolveString"),
        "application/proto",
        &string_request("color", "pro"),
    )
    .await;
    assert_eq!(st, 200, "{head}");
    assert!(head.contains("content-type: application/proto"), "{head}");
    let got = v2::ResolveStringResponse::decode(body.as_slice()).unwrap();
    let grpc_addr = match &srv.grpc_addr {
        cohortd::server::Bound::Tcp(a) => *a,
        cohortd::server::Bound::Unix(_) => unreachable!(),
    };
    let mut c = v2::service_client::ServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .unwrap();
    let want = c
        .resolve_string(
            v2::ResolveStringRequest::decode(string_request("color", "pro").as_slice()).unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, want);
    assert_eq!(
        (
            got.value.as_deref(),
            got.variant.as_deref(),
            got.reason.as_str()
        ),
        (Some("#00f"), Some("blue"), "TARGETING_MATCH")
    );

    // Errors: the reference's HTTP status and a JSON {code, message}.
    let cases = [
        (
            "ResolveString",
            string_request("nope", "pro"),
            404,
            "not_found",
        ),
        (
            "ResolveBoolean",
            string_request("color", "pro"),
            400,
            "invalid_argument",
        ),
        (
            "ResolveString",
            b"\xff\xff\xff".to_vec(),
            400,
            "invalid_argument",
        ),
    ];
    for (method, req, status, code) in cases {
        let (st, head, body) =
            post(addr, &format!("{PATH}/{method}"), "application/proto", &req).await;
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (st, &err["code"]),
            (status, &json!(code)),
            "{method}: {head} {err}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
    }
    // Only the binary codec is served: 415 naming it.
    let (st, head, _) = post(
        addr,
        &format!("{PATH}/ResolveString"),
        "application/json",
        b"{}",
    )
    .await;
    assert_eq!(st, 415, "{head}");
    assert!(head.contains("accept-post: application/proto"), "{head}");
    srv.shutdown().await;
}

#[tokio::test]
async fn event_stream_sends_enveloped_events_and_ends_on_shutdown() {
    let store = Store::new();
    store.install(flags("red"));
    let srv = start(store.clone()).await;
    let addr = srv.ofrep_addr.unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = [0u8, 0, 0, 0, 0]; // one empty EventStreamRequest, enveloped
    let head = format!(
        "POST {PATH}/EventStream HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+proto\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&req).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = async |raw: &mut Vec<u8>, needle: &[u8]| {
        while !raw.windows(needle.len()).any(|w| w == needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "stream closed before {:?}",
                String::from_utf8_lossy(needle)
            );
            raw.extend_from_slice(&buf[..n]);
        }
    };
    read_until(&mut raw, b"provider_ready").await;
    store.install(flags("blue"));
    read_until(&mut raw, b"configuration_change").await;
    let closed = tokio::spawn(srv.shutdown());
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    closed.await.unwrap();
    let (st, head, body) = split(&raw);
    assert_eq!(st, 200, "{head}");
    assert!(
        head.contains("content-type: application/connect+proto"),
        "{head}"
    );
    let frames = envelopes(&dechunk(&body));
    let types: Vec<String> = frames
        .iter()
        .filter(|(f, _)| *f == 0)
        .map(|(_, p)| {
            v2::EventStreamResponse::decode(p.as_slice())
                .unwrap()
                .r#type
        })
        .collect();
    assert_eq!(types, ["provider_ready", "configuration_change"]);
    let (flag, end) = frames.last().unwrap();
    assert_eq!(
        *flag, 0x02,
        "the stream ends with an end-of-stream envelope"
    );
    assert_eq!(serde_json::from_slice::<Value>(end).unwrap(), json!({}));
    // The change names the flag, as on gRPC.
    let change = v2::EventStreamResponse::decode(frames[1].1.as_slice()).unwrap();
    let data = change.data.unwrap();
    let flags = match &data.fields["flags"].kind {
        Some(prost_types::value::Kind::StructValue(s)) => {
            s.fields.keys().cloned().collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(flags, ["color"]);
}
