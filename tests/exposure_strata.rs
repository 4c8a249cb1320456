//! Strata end to end: exposures of an experiment with `srm: {strata: ATTR}`
//! reach a real OTLP receiver carrying the unit's value as `cohortd.stratum`
//! (from Assign, AssignAll and LogExposures; following `--exposure-unit-id`),
//! and `cohortd analyze` on what the receiver got, in the Collector file
//! exporter's JSON, catches an imbalance confined to strata that the totals
//! hide, with the same SRM tests as from the flat and CSV forms of the records.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::exposure::privacy::{hash_unit, UnitIdMode};
use cohortd::exposure::stratum::MAX_STRATUM_LEN;
use cohortd::transport::pb;
use support::context::proto_ctx;
use support::otlp::{attrs, Receiver, V};
use support::pipeline::{serve, serve_spans};

const CONFIG: &str = r#"
experiments:
  - experimentId: checkout
    status: running
    variants: [control, treatment]
    assignment: {hashKey: userId}
    srm: {strata: region}
  - experimentId: plain
    status: running
    variants: [a, b]
    assignment: {hashKey: userId}
"#;

type Client = pb::assignment_client::AssignmentClient<tonic::transport::Channel>;

/// A context of string fields plus one numeric field.
fn ctx_with_number(fields: &[(&str, &str)], key: &str, n: f64) -> prost_types::Struct {
    let mut s = proto_ctx(fields);
    s.fields.insert(
        key.to_owned(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(n)),
        },
    );
    s
}

async fn assign(c: &mut Client, exp: &str, ctx: prost_types::Struct, exposure: bool) -> String {
    c.assign(pb::AssignRequest {
        experiment: exp.into(),
        context: Some(ctx),
        exposure,
        sticky: Default::default(),
    })
    .await
    .unwrap()
    .into_inner()
    .variant
}

/// Exposure attributes by (experiment, unit), from the log records and, when
/// exposure spans are on, from the span events, to check both signals agree.
fn exposures(rx: &Receiver) -> BTreeMap<(String, String), BTreeMap<String, V>> {
    let mut out = BTreeMap::new();
    let logs = rx.logs();
    for l in logs
        .iter()
        .filter(|l| l.event_name == "feature_flag.evaluation")
    {
        let a = attrs(&l.attributes);
        let id = (
            a["feature_flag.key"].to_string(),
            a["feature_flag.context.id"].to_string(),
        );
        assert!(out.insert(id, a).is_none(), "one record per exposure");
    }
    let spans = rx.spans();
    let events: Vec<_> = spans
        .iter()
        .filter(|(_, s)| s.name == "feature_flag.evaluation")
        .map(|(_, s)| attrs(&s.events[0].attributes))
        .collect();
    assert!(
        events.is_empty() || events.len() == out.len(),
        "spans off, or a span event per log record"
    );
    for e in events {
        let id = (
            e["feature_flag.key"].to_string(),
            e["feature_flag.context.id"].to_string(),
        );
        assert_eq!(
            e.get("cohortd.stratum"),
            out[&id].get("cohortd.stratum"),
            "{id:?}"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exposure_call_exports_the_units_stratum() {
    let (rx, endpoint) = Receiver::start().await;
    // Spans on: the span events must carry the same strata as the log records.
    let srv = serve_spans(CONFIG, &endpoint, PipelineConfig::default()).await;
    let mut c = srv.client().await;
    let eu = || proto_ctx(&[("userId", "u-assign"), ("region", "eu")]);
    assign(&mut c, "checkout", eu(), true).await;
    c.assign_all(pb::AssignAllRequest {
        context: Some(proto_ctx(&[("userId", "u-all"), ("region", "us")])),
        exposure: true,
        ..Default::default()
    })
    .await
    .unwrap();
    // LogExposures with a numeric stratum: exported without a fraction.
    let numeric = || ctx_with_number(&[("userId", "u-log")], "region", 3.0);
    let variant = assign(&mut c, "checkout", numeric(), false).await;
    let accepted = c
        .log_exposures(pb::LogExposuresRequest {
            exposures: vec![pb::ExposureRecord {
                experiment: "checkout".into(),
                context: Some(numeric()),
                variant,
                config_version: String::new(),
            }],
        })
        .await
        .unwrap()
        .into_inner()
        .accepted;
    assert_eq!(accepted, 1);
    // No region, and a region over the bound: no stratum.
    assign(&mut c, "checkout", proto_ctx(&[("userId", "u-none")]), true).await;
    let long = "r".repeat(MAX_STRATUM_LEN + 1);
    let over = proto_ctx(&[("userId", "u-long"), ("region", &long)]);
    assign(&mut c, "checkout", over, true).await;
    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert!(!rx.spans().is_empty(), "spans were exported");

    let got = exposures(&rx);
    let stratum = |exp: &str, unit: &str| {
        got.get(&(exp.to_owned(), unit.to_owned()))
            .unwrap_or_else(|| panic!("no exposure of {unit} in {exp}: {got:#?}"))
            .get("cohortd.stratum")
            .cloned()
    };
    assert_eq!(stratum("checkout", "u-assign"), Some(V::S("eu".into())));
    assert_eq!(stratum("checkout", "u-all"), Some(V::S("us".into())));
    assert_eq!(stratum("checkout", "u-log"), Some(V::S("3".into())));
    assert_eq!(stratum("checkout", "u-none"), None);
    assert_eq!(stratum("checkout", "u-long"), None);
    // An experiment without `srm.strata` never carries one, whatever the context.
    assert_eq!(stratum("plain", "u-all"), None);
    assert_eq!(got.len(), 6, "{got:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stratum_follows_the_unit_id_privacy_setting() {
    for (mode, want) in [
        (UnitIdMode::Hash, Some(V::S(hash_unit("eu")))),
        (UnitIdMode::Omit, None),
    ] {
        let (rx, endpoint) = Receiver::start().await;
        let cfg = PipelineConfig {
            unit_id: mode,
            ..PipelineConfig::default()
        };
        let srv = serve(CONFIG, Some(&endpoint), cfg).await;
        let mut c = srv.client().await;
        let ctx = proto_ctx(&[("userId", "u-1"), ("region", "eu")]);
        assign(&mut c, "checkout", ctx, true).await;
        assert!(srv.running.shutdown().await);
        assert!(
            srv.pipeline
                .shutdown(Duration::from_secs(10))
                .await
                .completed
        );
        let logs = rx.logs();
        assert_eq!(logs.len(), 1, "{mode:?}");
        let a = attrs(&logs[0].attributes);
        assert_eq!(a.get("cohortd.stratum"), want.as_ref(), "{mode:?}: {a:?}");
        assert!(
            !a.values().any(|v| *v == V::S("eu".into())),
            "{mode:?}: the raw value is exported: {a:?}"
        );
    }
}

/// Flat JSON lines holding the same exposures as the OTLP log records.
fn flat_lines(rx: &Receiver) -> Vec<String> {
    rx.logs()
        .iter()
        .filter(|l| l.event_name == "feature_flag.evaluation")
        .map(|l| {
            let a = attrs(&l.attributes);
            let epoch = match &a["cohortd.epoch"] {
                V::I(i) => *i,
                other => panic!("epoch {other:?}"),
            };
            let mut row = serde_json::json!({
                "type": "exposure",
                "time": l.time_unix_nano,
                "unit": a["feature_flag.context.id"].to_string(),
                "experiment": a["feature_flag.key"].to_string(),
                "variant": a["feature_flag.result.variant"].to_string(),
                "version": a["feature_flag.version"].to_string(),
                "epoch": epoch,
                "salt_fingerprint": a["cohortd.salt_fingerprint"].to_string(),
            });
            if let Some(s) = a.get("cohortd.stratum") {
                row["stratum"] = s.to_string().into();
            }
            row.to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_catches_a_per_stratum_imbalance_in_exported_exposures() {
    let (rx, endpoint) = Receiver::start().await;
    let srv = serve(CONFIG, Some(&endpoint), PipelineConfig::default()).await;
    let mut c = srv.client().await;
    // A client that loses two thirds of the treatment exposures in `eu` and
    // two thirds of the control exposures in `us`: each region is badly
    // skewed, in opposite directions, so the totals stay near 50/50.
    let mut records = Vec::new();
    let mut kept: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for i in 0..1200 {
        let region = if i % 2 == 0 { "eu" } else { "us" };
        let user = format!("user-{i}");
        let ctx = proto_ctx(&[("userId", &user), ("region", region)]);
        let variant = assign(&mut c, "checkout", ctx.clone(), false).await;
        let lost = if region == "eu" {
            "treatment"
        } else {
            "control"
        };
        if variant == lost && i % 3 != 0 {
            continue;
        }
        *kept.entry((region, variant.clone())).or_default() += 1;
        records.push(pb::ExposureRecord {
            experiment: "checkout".into(),
            context: Some(ctx),
            variant,
            config_version: String::new(),
        });
    }
    let total = records.len() as u32;
    for chunk in records.chunks(200) {
        let r = c
            .log_exposures(pb::LogExposuresRequest {
                exposures: chunk.to_vec(),
            })
            .await
            .unwrap();
        assert_eq!(r.into_inner().accepted, chunk.len() as u32);
    }
    assert!(srv.running.shutdown().await);
    let report = srv.pipeline.shutdown(Duration::from_secs(10)).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.stats.emitted, u64::from(total));

    // What the Collector's file exporter would have written, and the same
    // records as flat JSON lines and CSV.
    let work = tempfile::tempdir().unwrap();
    let otlp = work.path().join("collector.json");
    rx.write_collector_file(&otlp);
    let flat = flat_lines(&rx);
    let flat_path = work.path().join("events.jsonl");
    support::analysis::write_lines(&flat_path, &flat);
    let csv_path = work.path().join("events.csv");
    std::fs::write(&csv_path, support::analysis::to_csv(&flat)).unwrap();

    let config = srv.dir.path().to_str().unwrap();
    let srm_of = |input: &std::path::Path| {
        let out = support::analysis::analyze(
            work.path(),
            &[
                "-c",
                config,
                "--json",
                "-e",
                "checkout",
                input.to_str().unwrap(),
            ],
        );
        let r = support::analysis::report(&out);
        assert_eq!(r["input"]["exposures"], u64::from(total), "{r:#}");
        assert_eq!(r["input"]["bad_lines"], 0, "{r:#}");
        r["experiments"][0].clone()
    };
    let e = srm_of(&otlp);
    let srm = e["srm"].as_array().unwrap();
    assert_eq!(srm.len(), 3, "totals, eu, us: {e:#}");
    let totals = &srm[0];
    assert!(totals["stratum"].is_null());
    assert_eq!(totals["mismatch"], false, "the totals hide it: {totals:#}");
    for (t, region) in srm[1..].iter().zip(["eu", "us"]) {
        assert_eq!(t["stratum"], region, "{t:#}");
        let want = [
            kept[&(region, "control".to_owned())],
            kept[&(region, "treatment".to_owned())],
        ];
        assert_eq!(t["units"], serde_json::json!(want), "{t:#}");
        assert_eq!(t["mismatch"], true, "{t:#}");
    }
    assert!(e["winner"].is_null(), "{e:#}");
    assert!(
        e["decision"]
            .as_str()
            .unwrap()
            .starts_with("halted: sample ratio mismatch"),
        "{e:#}"
    );
    // One code path: flat JSON and CSV give the same SRM tests.
    assert_eq!(srm_of(&flat_path)["srm"], e["srm"]);
    assert_eq!(srm_of(&csv_path)["srm"], e["srm"]);
}
