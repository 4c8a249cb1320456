//! Keep-alive pings as flagd providers send them (issue 15): a client that pings
//! every second, also while idle, over a long-lived EventStream against the real
//! binary. The connection must stay up (no GOAWAY ENHANCE_YOUR_CALM, every ping
//! answered within the client's ping timeout) and config changes must keep
//! arriving on the stream.

mod support;

use std::time::{Duration, Instant};

use cohortd::transport::flagd::pb_v2 as v2;
use cohortd::transport::pb;
use support::binary::{experiment, spawn};
use tonic::transport::Endpoint;

type Flagd = v2::service_client::ServiceClient<tonic::transport::Channel>;

/// The next event that is not a keep-alive message, or a panic naming `what`.
async fn next_change(s: &mut tonic::Streaming<v2::EventStreamResponse>, what: &str) -> String {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .unwrap_or_else(|_| panic!("no event within 10 s ({what})"))
            .unwrap_or_else(|e| panic!("the stream failed ({what}): {e}"))
            .unwrap_or_else(|| panic!("the stream ended ({what})"));
        if ev.r#type != "keep_alive" {
            return ev.r#type;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_every_second_keep_the_event_stream_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(dir.path(), &["--settle", "0s"]);
    // As grpc clients configured by flagd providers: keepalive_time 1 s, pings
    // without calls allowed. A ping not acknowledged within 900 ms closes the
    // connection, which fails the stream.
    let channel = Endpoint::from_shared(format!("http://{}", s.grpc))
        .unwrap()
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_while_idle(true)
        .keep_alive_timeout(Duration::from_millis(900))
        .connect()
        .await
        .unwrap();
    let mut flagd = Flagd::new(channel.clone());
    let mut stream = flagd
        .event_stream(v2::EventStreamRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_change(&mut stream, "ready").await, "provider_ready");

    // About six seconds of pings, with a config change each second.
    let start = Instant::now();
    let mut changes = 0;
    while start.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        changes += 1;
        let key = format!("k{changes}");
        std::fs::write(dir.path().join(format!("{key}.json")), experiment(&key)).unwrap();
        let ev = next_change(&mut stream, &format!("change {changes}")).await;
        assert_eq!(ev, "configuration_change");
    }
    // The channel still serves unary calls.
    let mut assign = pb::assignment_client::AssignmentClient::new(channel);
    let r = assign
        .assign(pb::AssignRequest {
            experiment: "a".into(),
            ..Default::default()
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
}
