//! flagd-format flag files served by a running cohortd: loading beside cohortd
//! experiments (duplicate keys refused naming both files), flagd v1/v2 values,
//! variants, reasons, error codes and metadata as flagd's evaluator gives them,
//! OFREP serving the same flags, and the flagd.sync.v1 service (whole set,
//! selector, update after a reload).

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use cohortd::config::RawFile;
use cohortd::exposure::NoopSink;
use cohortd::metrics::Metrics;
use cohortd::reload::Store;
use cohortd::server::{Listen, Running, ServeOptions};
use cohortd::transport::flagd::pb_v1 as v1;
use cohortd::transport::flagd::pb_v2 as v2;
use cohortd::transport::flagd::sync::pb as sync;
use cohortd::Snapshot;
use prost_types::value::Kind;
use prost_types::Struct;
use serde_json::{json, Value};
use support::context::proto_ctx;
use support::http::ofrep_post;
use tonic::Code;

fn flagd_doc() -> Value {
    json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"team": "web", "flagSetVersion": 3},
        "$evaluators": {"isEmployee": {"ends_with": [{"var": "email"}, "@example.com"]}},
        "flags": {
            "banner": {"state": "ENABLED", "variants": {"on": true, "off": false},
                        "defaultVariant": "off", "metadata": {"team": "growth"}},
            "color": {"state": "ENABLED",
                       "variants": {"red": "#f00", "blue": "#00f"},
                       "defaultVariant": "red",
                       "targeting": {"if": [{"$ref": "isEmployee"}, "blue", null]}},
            "split": {"state": "ENABLED", "variants": {"a": "A", "b": "B"},
                       "defaultVariant": "a",
                       "targeting": {"fractional": [["a", 50], ["b", 50]]}},
            "off": {"state": "DISABLED", "variants": {"x": 1}, "defaultVariant": "x"},
            "nodefault": {"state": "ENABLED", "variants": {"x": "X"}, "defaultVariant": null},
            "broken": {"state": "ENABLED", "variants": {"x": "X"}, "defaultVariant": "x",
                        "targeting": {"var": "name"}}
        }
    })
}

fn experiment() -> Value {
    json!({"experimentId": "exp", "status": "running",
           "variants": [{"key": "control", "value": false, "weight": 1},
                        {"key": "treatment", "value": true, "weight": 1}]})
}

fn snapshot(files: &[(&str, Value)]) -> Result<Snapshot, cohortd::config::ConfigErrors> {
    let raw: Vec<RawFile> = files
        .iter()
        .map(|(name, v)| RawFile {
            path: PathBuf::from(format!("/cfg/{name}")),
            bytes: serde_json::to_vec(v).unwrap(),
        })
        .collect();
    Snapshot::from_raw(&raw)
}

fn grpc_url(srv: &Running) -> String {
    match &srv.grpc_addr {
        cohortd::server::Bound::Tcp(a) => format!("http://{a}"),
        cohortd::server::Bound::Unix(_) => unreachable!("the tests listen on TCP"),
    }
}

async fn start(store: Arc<Store>) -> Running {
    let opts = ServeOptions {
        listen: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        ofrep_listen: Some("127.0.0.1:0".parse().unwrap()),
        sync_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServeOptions::default()
    };
    cohortd::server::start(opts, store, Arc::new(NoopSink), Metrics::new())
        .await
        .unwrap()
}

fn meta_str(m: &Option<Struct>, k: &str) -> Option<String> {
    match &m.as_ref()?.fields.get(k)?.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(Kind::NumberValue(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[test]
fn a_key_defined_twice_names_both_files() {
    let twice = snapshot(&[("a.json", flagd_doc()), ("b.yaml", flagd_doc())]).unwrap_err();
    let text = twice.to_string();
    assert!(text.contains("b.yaml") && text.contains("a.json"), "{text}");
    assert!(text.contains("banner"), "{text}");
    let mut exp = experiment();
    exp["experimentId"] = json!("banner");
    let clash = snapshot(&[("exp.json", exp), ("flags.json", flagd_doc())]).unwrap_err();
    let text = clash.to_string();
    assert!(
        text.contains("cohortd experiment in /cfg/exp.json"),
        "{text}"
    );
}

#[test]
fn flagd_files_load_beside_experiments_and_change_the_version() {
    let both = snapshot(&[("exp.json", experiment()), ("flags.json", flagd_doc())]).unwrap();
    let only = snapshot(&[("exp.json", experiment())]).unwrap();
    assert!(both.flag("banner").is_ok() && both.flag("exp").is_ok());
    assert_ne!(both.version(), only.version());
    let mut changed = flagd_doc();
    changed["flags"]["banner"]["defaultVariant"] = json!("on");
    let after = snapshot(&[("exp.json", experiment()), ("flags.json", changed)]).unwrap();
    assert_ne!(both.version(), after.version());
    // A bad targeting operator is a load error naming file, flag and field.
    let mut bad = flagd_doc();
    bad["flags"]["color"]["targeting"] = json!({"no_such_op": [1]});
    let e = snapshot(&[("flags.json", bad)]).unwrap_err().to_string();
    assert!(e.contains("flags.json") && e.contains("color"), "{e}");
}

#[tokio::test]
async fn flagd_rpc_serves_flagd_reasons_codes_and_metadata() {
    let store = Store::new();
    store.install(snapshot(&[("exp.json", experiment()), ("flags.json", flagd_doc())]).unwrap());
    let srv = start(store).await;
    let url = grpc_url(&srv);
    let mut c1 = v1::service_client::ServiceClient::connect(url.clone())
        .await
        .unwrap();
    let mut c2 = v2::service_client::ServiceClient::connect(url)
        .await
        .unwrap();

    let r = c1
        .resolve_boolean(v1::ResolveBooleanRequest {
            flag_key: "banner".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_str(), r.reason.as_str()),
        (false, "off", "STATIC")
    );
    // Flag-set metadata under the flag's own (the flag wins), plus cohortd's key.
    assert_eq!(meta_str(&r.metadata, "team").as_deref(), Some("growth"));
    assert_eq!(
        meta_str(&r.metadata, "flagSetVersion").as_deref(),
        Some("3")
    );
    assert!(meta_str(&r.metadata, "cohortdConfigVersion").is_some());
    assert!(meta_str(&r.metadata, "configVersion").is_none());

    let color = |email: &'static str| {
        let mut c = c1.clone();
        async move {
            c.resolve_string(v1::ResolveStringRequest {
                flag_key: "color".into(),
                context: Some(proto_ctx(&[("email", email)])),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let hit = color("ann@example.com").await;
    assert_eq!(
        (hit.value.as_str(), hit.reason.as_str()),
        ("#00f", "TARGETING_MATCH")
    );
    let miss = color("bob@else.org").await;
    assert_eq!(
        (miss.value.as_str(), miss.reason.as_str()),
        ("#f00", "DEFAULT")
    );

    // Disabled: zero value, no variant, reason DISABLED (flagd core 0.16).
    let off = c1
        .resolve_float(v1::ResolveFloatRequest {
            flag_key: "off".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (off.value, off.variant.as_str(), off.reason.as_str()),
        (0.0, "", "DISABLED")
    );
    // No default variant: v1 says FLAG_NOT_FOUND, v2 DEFAULT without a value.
    let e = c1
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "nodefault".into(),
            context: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let nd = c2
        .resolve_string(v2::ResolveStringRequest {
            flag_key: "nodefault".into(),
            context: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (nd.value, nd.variant, nd.reason.as_str()),
        (None, None, "DEFAULT")
    );
    // Targeting naming no variant: GENERAL (gRPC Unknown); wrong type: INVALID_ARGUMENT.
    let e = c1
        .resolve_string(v1::ResolveStringRequest {
            flag_key: "broken".into(),
            context: Some(proto_ctx(&[("name", "zed")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unknown, "{e:?}");
    let e = c1
        .resolve_int(v1::ResolveIntRequest {
            flag_key: "banner".into(),
            context: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // ResolveAll lists flagd flags beside experiments; failing ones are left out.
    let all = c1
        .resolve_all(v1::ResolveAllRequest {
            context: Some(proto_ctx(&[("targetingKey", "u1"), ("name", "zed")])),
        })
        .await
        .unwrap()
        .into_inner();
    for k in ["banner", "color", "split", "off", "exp"] {
        assert!(
            all.flags.contains_key(k),
            "{k} missing from {:?}",
            all.flags.keys()
        );
    }
    assert!(!all.flags.contains_key("broken"));

    // Assign says a flagd flag is not an experiment, and Explain gives the same
    // answer (not NOT_FOUND: the key exists).
    let mut a =
        cohortd::transport::pb::assignment_client::AssignmentClient::connect(grpc_url(&srv))
            .await
            .unwrap();
    let req = || cohortd::transport::pb::AssignRequest {
        experiment: "banner".into(),
        ..Default::default()
    };
    let errors = [
        ("Assign", a.assign(req()).await.unwrap_err()),
        ("Explain", a.explain(req()).await.unwrap_err()),
    ];
    for (rpc, e) in errors {
        assert_eq!(e.code(), Code::FailedPrecondition, "{rpc}: {e:?}");
        assert!(
            e.message().contains("not a cohortd experiment"),
            "{rpc}: {e:?}"
        );
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn ofrep_serves_flagd_flags() {
    let store = Store::new();
    store.install(snapshot(&[("flags.json", flagd_doc())]).unwrap());
    let srv = start(store).await;
    let addr = srv.ofrep_addr.unwrap();
    let (st, b) = ofrep_post(
        addr,
        "/ofrep/v1/evaluate/flags/color",
        &[],
        r#"{"context":{"targetingKey":"u","email":"a@example.com"}}"#,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (&b["value"], &b["variant"], &b["reason"]),
        (&json!("#00f"), &json!("blue"), &json!("TARGETING_MATCH"))
    );
    assert_eq!(b["metadata"]["flagSetVersion"], json!(3));
    let (st, b) = ofrep_post(
        addr,
        "/ofrep/v1/evaluate/flags/broken",
        &[],
        r#"{"context":{"targetingKey":"u","name":"q"}}"#,
    )
    .await;
    assert_eq!((st, &b["errorCode"]), (400, &json!("GENERAL")), "{b}");
    srv.shutdown().await;
}

#[tokio::test]
async fn sync_sends_the_flagd_set_and_every_change() {
    let store = Store::new();
    store.install(snapshot(&[("exp.json", experiment()), ("flags.json", flagd_doc())]).unwrap());
    let srv = start(store.clone()).await;
    let mut c = sync::flag_sync_service_client::FlagSyncServiceClient::connect(format!(
        "http://{}",
        srv.sync_addr.unwrap()
    ))
    .await
    .unwrap();
    let all = c
        .fetch_all_flags(sync::FetchAllFlagsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let doc: Value = serde_json::from_str(&all.flag_configuration).unwrap();
    let flags = doc["flags"].as_object().unwrap();
    assert!(
        flags.contains_key("banner") && !flags.contains_key("exp"),
        "experiments are not sent"
    );
    // `$ref` resolved, flag-set metadata merged into each flag.
    assert_eq!(
        doc["flags"]["color"]["targeting"]["if"][0]["ends_with"][1],
        json!("@example.com")
    );
    assert_eq!(doc["flags"]["color"]["metadata"]["team"], json!("web"));

    // A selector naming no flagd file is refused; one naming the file works.
    let mut req = tonic::Request::new(sync::FetchAllFlagsRequest::default());
    req.metadata_mut()
        .insert("flagd-selector", "nope.json".parse().unwrap());
    assert_eq!(
        c.fetch_all_flags(req).await.unwrap_err().code(),
        Code::NotFound
    );
    let mut req = tonic::Request::new(sync::FetchAllFlagsRequest::default());
    req.metadata_mut()
        .insert("flagd-selector", "flags.json".parse().unwrap());
    assert!(c.fetch_all_flags(req).await.is_ok());

    let mut stream = c
        .sync_flags(sync::SyncFlagsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.flag_configuration, all.flag_configuration);
    let mut changed = flagd_doc();
    changed["flags"]["banner"]["defaultVariant"] = json!("on");
    store.install(snapshot(&[("exp.json", experiment()), ("flags.json", changed)]).unwrap());
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let doc: Value = serde_json::from_str(&next.flag_configuration).unwrap();
    assert_eq!(doc["flags"]["banner"]["defaultVariant"], json!("on"));
    srv.shutdown().await;
}
