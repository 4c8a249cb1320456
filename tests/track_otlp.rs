//! `Track` end to end: outcome events through the real gRPC server reach a real
//! OTLP receiver as `cohortd.outcome` log records with exact attributes; retries
//! of an event id are recorded once; a refused batch records nothing; a dead
//! collector fails no call; and `cohortd analyze` reads what Track exported.

mod exposure_support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::exposure::privacy::{hash_unit, UnitIdMode};
use cohortd::transport::pb;
use exposure_support::otlp::{attrs, hex, Receiver, V};
use exposure_support::{proto_ctx, serve};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

const CONFIG: &str = r#"
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId, salt: checkout-salt, epoch: 2}
    metrics:
      primary: {name: purchase, type: conversion}
      secondary: [{name: revenue, type: continuous}]
      guardrails: [{name: error_rate, threshold: 0.05}]
  - experimentId: search
    status: running
    variants: [a, b]
    assignment: {hashKey: userId}
    metrics:
      primary: {name: revenue, type: continuous}
  - experimentId: banner
    status: running
    variants: [hidden, shown]
    assignment: {hashKey: deviceId}
    metrics:
      secondary: [{name: purchase, type: conversion}]
  - experimentId: unmeasured
    status: running
    variants: [x, y]
    assignment: {hashKey: userId}
"#;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn event(ctx: &[(&str, &str)], metric: &str, value: Option<f64>, id: &str) -> pb::OutcomeEvent {
    pb::OutcomeEvent {
        context: Some(proto_ctx(ctx)),
        metric: metric.into(),
        value,
        event_id: id.into(),
        timestamp: None,
        experiments: vec![],
    }
}

fn track(events: Vec<pb::OutcomeEvent>) -> tonic::Request<pb::TrackRequest> {
    let mut req = tonic::Request::new(pb::TrackRequest { events });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    req
}

fn outcomes(rx: &Receiver) -> Vec<LogRecord> {
    rx.logs()
        .into_iter()
        .filter(|r| r.event_name == "cohortd.outcome")
        .collect()
}

/// `cohortd.assignments` as sorted (experiment -> attributes) maps.
fn assignments(r: &LogRecord) -> BTreeMap<String, BTreeMap<String, V>> {
    let list = r
        .attributes
        .iter()
        .find(|kv| kv.key == "cohortd.assignments")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref());
    let Some(any_value::Value::ArrayValue(list)) = list else {
        panic!("cohortd.assignments is not an array: {r:?}");
    };
    list.values
        .iter()
        .map(|v| match &v.value {
            Some(any_value::Value::KvlistValue(kv)) => {
                let m = attrs(&kv.values);
                (m["experiment"].to_string(), m)
            }
            other => panic!("not a kvlist: {other:?}"),
        })
        .collect()
}

/// What `AssignAll` says about `user` (the engine's own answer).
async fn assigned(
    c: &mut pb::assignment_client::AssignmentClient<tonic::transport::Channel>,
    ctx: &[(&str, &str)],
) -> BTreeMap<String, pb::AssignResponse> {
    let r = c
        .assign_all(pb::AssignAllRequest {
            context: Some(proto_ctx(ctx)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    r.assignments
        .into_iter()
        .map(|a| (a.experiment.clone(), a))
        .collect()
}

fn s(v: &str) -> V {
    V::S(v.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_records_carry_exact_attributes_and_the_units_assignments() {
    let (rx, endpoint) = Receiver::start().await;
    let srv = serve(CONFIG, Some(&endpoint), PipelineConfig::default()).await;
    let mut c = srv.client().await;
    // Traffic is 100%, so every unit is enrolled in every running experiment.
    let u1 = assigned(&mut c, &[("userId", "u1")]).await;
    let both = [("userId", "u2"), ("deviceId", "d2")];
    let u2 = assigned(&mut c, &both).await;

    let mut revenue = event(&[("userId", "u1")], "revenue", Some(12.5), "e-rev");
    revenue.timestamp = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 500_000_000,
    });
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let resp = c
        .track(track(vec![
            revenue,
            event(&both, "purchase", None, "e-buy"),
        ]))
        .await
        .unwrap()
        .into_inner();
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();

    // The response: per event, the experiments listing the metric, with the
    // variant the engine assigns.
    let version = u1["checkout"].config_version.clone();
    assert_eq!(resp.config_version, version);
    let pairs = |r: &pb::TrackResult| -> Vec<(String, String)> {
        r.assignments
            .iter()
            .map(|a| (a.experiment.clone(), a.variant.clone()))
            .collect()
    };
    assert_eq!(resp.results.len(), 2);
    assert_eq!(
        pairs(&resp.results[0]),
        vec![
            ("checkout".to_owned(), u1["checkout"].variant.clone()),
            ("search".to_owned(), u1["search"].variant.clone()),
        ]
    );
    // Served experiments are evaluated in key order.
    assert_eq!(
        pairs(&resp.results[1]),
        vec![
            ("banner".to_owned(), u2["banner"].variant.clone()),
            ("checkout".to_owned(), u2["checkout"].variant.clone()),
        ]
    );
    assert!(!resp.results[0].duplicate && !resp.results[1].duplicate);
    let a = &resp.results[0].assignments[0];
    assert_eq!(
        (a.epoch, a.salt_fingerprint.as_str()),
        (2, u1["checkout"].salt_fingerprint.as_str())
    );

    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    let st = report.stats;
    // Two events; the purchase is one record per unit id (userId, deviceId).
    assert_eq!(
        (st.outcomes_received, st.outcomes_emitted),
        (2, 3),
        "{st:?}"
    );
    assert_eq!(st.exported_logs, 3, "no exposure was recorded: {st:?}");

    let recs = outcomes(&rx);
    assert_eq!(recs.len(), 3, "{recs:?}");
    let by_id: BTreeMap<String, &LogRecord> = recs
        .iter()
        .map(|r| {
            (
                attrs(&r.attributes)["cohortd.outcome.event_id"].to_string(),
                r,
            )
        })
        .collect();
    let rev = by_id["e-rev"];
    assert_eq!(rev.time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(hex(&rev.trace_id), TRACE_ID, "joins the caller's trace");
    let mut flat = attrs(&rev.attributes);
    flat.remove("cohortd.assignments");
    let expected: BTreeMap<String, V> = [
        ("cohortd.outcome.metric", s("revenue")),
        ("cohortd.outcome.value", V::D(12.5)),
        ("cohortd.outcome.event_id", s("e-rev")),
        ("feature_flag.context.id", s("u1")),
        ("feature_flag.provider.name", s("cohortd")),
        ("cohortd.source", s("track")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(flat, expected);
    let entry = |exp: &str, a: &pb::AssignResponse| -> (String, BTreeMap<String, V>) {
        let m = [
            ("experiment", s(exp)),
            ("variant", s(&a.variant)),
            ("version", s(&version)),
            ("epoch", V::I(i64::from(a.epoch))),
            ("salt_fingerprint", s(&a.salt_fingerprint)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        (exp.to_owned(), m)
    };
    assert_eq!(
        assignments(rev),
        [
            entry("checkout", &u1["checkout"]),
            entry("search", &u1["search"])
        ]
        .into_iter()
        .collect()
    );

    // No value is a conversion (1); no timestamp is the time of receipt.
    let buy = attrs(&by_id["e-buy"].attributes);
    assert_eq!(buy["cohortd.outcome.value"], V::D(1.0));
    assert_eq!(buy["feature_flag.context.id"], s("d2"));
    let t = by_id["e-buy"].time_unix_nano as u128;
    assert!(before.as_nanos() <= t && t <= after.as_nanos());
    assert_eq!(
        assignments(by_id["e-buy"]),
        [entry("banner", &u2["banner"])].into_iter().collect()
    );
    // The userId-keyed experiment sees another unit: its own record, with a
    // derived event id (the first unit, in experiment key order, keeps the
    // caller's).
    let user = attrs(&by_id["e-buy/userId"].attributes);
    assert_eq!(user["feature_flag.context.id"], s("u2"));
    assert_eq!(user["cohortd.outcome.value"], V::D(1.0));
    assert_eq!(
        assignments(by_id["e-buy/userId"]),
        [entry("checkout", &u2["checkout"])].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_id_is_recorded_once_with_the_unit_id_hashed() {
    let (rx, endpoint) = Receiver::start().await;
    let cfg = PipelineConfig {
        unit_id: UnitIdMode::Hash,
        ..PipelineConfig::default()
    };
    let srv = serve(CONFIG, Some(&endpoint), cfg).await;
    let mut c = srv.client().await;
    let ctx = [("userId", "u3")];
    let first = c
        .track(track(vec![
            event(&ctx, "purchase", None, "once"),
            // The same id in the same batch: a duplicate too.
            event(&ctx, "purchase", None, "once"),
            event(&ctx, "purchase", None, "other"),
        ]))
        .await
        .unwrap()
        .into_inner();
    let retry = c
        .track(track(vec![event(&ctx, "purchase", None, "once")]))
        .await
        .unwrap()
        .into_inner();
    let dup: Vec<bool> = first.results.iter().map(|r| r.duplicate).collect();
    assert_eq!(dup, [false, true, false]);
    assert!(retry.results[0].duplicate);
    // A retry still says where the unit is.
    assert_eq!(retry.results[0].assignments, first.results[0].assignments);
    let text = srv.metrics.encode();
    assert!(text.contains("cohortd_outcomes_total 2\n"), "{text}");
    assert!(
        text.contains("cohortd_outcomes_deduped_total 2\n"),
        "{text}"
    );

    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    let recs = outcomes(&rx);
    let ids: Vec<String> = recs
        .iter()
        .map(|r| attrs(&r.attributes)["cohortd.outcome.event_id"].to_string())
        .collect();
    assert_eq!(ids.iter().filter(|i| *i == "once").count(), 1, "{ids:?}");
    assert_eq!(recs.len(), 2, "{ids:?}");
    for r in &recs {
        assert_eq!(
            attrs(&r.attributes)["feature_flag.context.id"],
            s(&hash_unit("u3"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_records_nothing_and_names_the_event() {
    let (rx, endpoint) = Receiver::start().await;
    let srv = serve(CONFIG, Some(&endpoint), PipelineConfig::default()).await;
    let mut c = srv.client().await;
    let good = || event(&[("userId", "u4")], "purchase", None, "good");
    let mut named_wrong = event(&[("userId", "u4")], "purchase", None, "n");
    named_wrong.experiments = vec!["search".into()];
    let mut named_missing = event(&[("userId", "u4")], "purchase", None, "n");
    named_missing.experiments = vec!["nope".into()];
    let mut bad_time = event(&[("userId", "u4")], "purchase", None, "t");
    bad_time.timestamp = Some(prost_types::Timestamp {
        seconds: -5,
        nanos: 0,
    });
    let cases: Vec<(pb::OutcomeEvent, tonic::Code, &str)> = vec![
        (
            event(&[("userId", "u4")], "revenue", Some(f64::NAN), "x"),
            tonic::Code::InvalidArgument,
            "not a finite number",
        ),
        (
            event(&[("userId", "u4")], "revenue", Some(f64::INFINITY), "x"),
            tonic::Code::InvalidArgument,
            "not a finite number",
        ),
        (
            event(&[("userId", "u4")], "signup", None, "x"),
            tonic::Code::InvalidArgument,
            "unknown metric `signup`",
        ),
        (
            named_wrong,
            tonic::Code::InvalidArgument,
            "unknown metric `purchase` for experiment `search`",
        ),
        (named_missing, tonic::Code::NotFound, "nope"),
        (
            event(&[("userId", "u4")], "purchase", None, ""),
            tonic::Code::InvalidArgument,
            "event_id is empty",
        ),
        (
            event(&[("accountId", "a4")], "purchase", None, "x"),
            tonic::Code::InvalidArgument,
            "no usable unit attribute (`deviceId` or `userId`)",
        ),
        (bad_time, tonic::Code::InvalidArgument, "not a valid time"),
    ];
    for (bad, code, words) in cases {
        let err = c.track(track(vec![good(), bad])).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(err.message().starts_with("events[1]: "), "{err:?}");
        assert!(err.message().contains(words), "{words}: {err:?}");
    }
    let over: Vec<_> = (0..1001).map(|_| good()).collect();
    let err = c.track(track(over)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("--max-track-events"), "{err:?}");

    let text = srv.metrics.encode();
    assert!(text.contains("cohortd_outcomes_total 0\n"), "{text}");
    // The refused batches did not use up the good event's id.
    let ok = c.track(track(vec![good()])).await.unwrap().into_inner();
    assert!(!ok.results[0].duplicate);

    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.stats.outcomes_received, 1, "{report:?}");
    let recs = outcomes(&rx);
    assert_eq!(recs.len(), 1, "only the accepted batch: {recs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_fails_no_track_call() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = PipelineConfig {
        queue: 8,
        ..PipelineConfig::default()
    };
    let srv = serve(CONFIG, Some(&format!("http://{closed}")), cfg).await;
    let mut c = srv.client().await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for i in 0..50 {
                let user = format!("t{t}-u{i}");
                let r = c
                    .track(track(vec![event(
                        &[("userId", &user)],
                        "purchase",
                        None,
                        &format!("{user}-e"),
                    )]))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(r.results[0].assignments.len(), 1);
                n += 1;
            }
            n
        }));
    }
    let mut calls = 0;
    for t in tasks {
        calls += t.await.unwrap();
    }
    assert_eq!(calls, 200, "every call succeeded");
    let last = c
        .track(track(vec![event(
            &[("userId", "x")],
            "purchase",
            None,
            "x",
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.results[0].assignments[0].experiment, "checkout");
    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(5)).await;
    let st = report.stats;
    assert_eq!(st.outcomes_received, 201, "{st:?}");
    assert_eq!(st.outcomes_queued + st.outcomes_dropped, 201, "{st:?}");
    assert!(st.failed_logs > 0, "export failures are counted: {st:?}");
    let text = srv.metrics.encode();
    assert!(
        text.contains(&format!(
            "cohortd_outcomes_dropped_total {}\n",
            st.outcomes_dropped
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohortd_analyze_reads_what_track_exported() {
    let (rx, endpoint) = Receiver::start().await;
    let srv = serve(CONFIG, Some(&endpoint), PipelineConfig::default()).await;
    let mut c = srv.client().await;
    // Every unit is exposed to checkout; only treatment units purchase.
    let mut treated = 0u64;
    let mut users = 0u64;
    for i in 0..60 {
        let user = format!("user-{i}");
        let a = c
            .assign(pb::AssignRequest {
                experiment: "checkout".into(),
                context: Some(proto_ctx(&[("userId", &user)])),
                exposure: true,
                sticky: Default::default(),
            })
            .await
            .unwrap()
            .into_inner();
        users += 1;
        if a.variant == "treatment" {
            treated += 1;
            let mut e = event(&[("userId", &user)], "purchase", None, &format!("{user}-p"));
            e.experiments = vec!["checkout".into()];
            c.track(track(vec![e])).await.unwrap();
        }
    }
    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");

    // What the collector's file exporter would have written.
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("collector.jsonl");
    rx.write_collector_file(&input);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cohortd"))
        .arg("analyze")
        .env_remove("COHORTD_CONFIG_DIR")
        .env("COHORTD_LOOK_LEDGER", work.path().join("looks.json"))
        .arg("-c")
        .arg(srv.dir.path())
        .args(["--json", "-e", "checkout"])
        .arg(&input)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(r["input"]["exposures"], users, "{r:#}");
    assert_eq!(r["input"]["outcomes"], treated, "{r:#}");
    assert_eq!(r["input"]["bad_lines"], 0, "{r:#}");
    assert_eq!(r["unmatched"]["duplicate_outcomes"], 0, "{r:#}");
    let exp = &r["experiments"][0];
    assert_eq!(exp["integrity"]["outcomes_unexposed"], 0, "{exp:#}");
    assert_eq!(exp["integrity"]["other_version_exposures"], 0, "{exp:#}");
    assert_eq!(exp["integrity"]["outcomes_before_exposure"], 0, "{exp:#}");
    let purchase = exp["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "purchase")
        .unwrap_or_else(|| panic!("no purchase result: {exp:#}"));
    // Every treatment unit converted, no control unit did.
    assert_eq!(purchase["variant"], "treatment");
    assert_eq!(purchase["comparison"]["control_mean"], 0.0, "{purchase:#}");
    assert_eq!(
        purchase["comparison"]["treatment_mean"], 1.0,
        "{purchase:#}"
    );
}
