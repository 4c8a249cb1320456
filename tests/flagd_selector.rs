//! `Flagd-Selector` on the evaluation services, as flagd honours it
//! (open-feature/flagd docs/reference/selector-syntax.md): flagd v2 `Resolve*`,
//! v1 `ResolveAll` and both OFREP endpoints see only the flags the selector
//! picks (`flagSetId=ID`, `flagSetId=` for no named set, `source=FILE` or a bare
//! file); a flag left out is FLAG_NOT_FOUND; bulk answers reflect the selected
//! `flagSetId` in their metadata. No selector: every flag, as before.

mod support;

use cohortd::exposure::pipeline::PipelineConfig;
use cohortd::server::Bound;
use cohortd::transport::flagd::{pb_v1 as v1, pb_v2 as v2};
use support::context::proto_ctx;
use support::http::ofrep_post;
use support::pipeline::serve_with;
use tonic::Code;

/// A cohortd experiment (in `experiments.yaml`, no flag set).
const EXPERIMENTS: &str = "experiments:\n  - {key: exp, status: running, variants: [a, b]}\n";

/// Flag set `web` at the set level, with one flag overriding it to `mobile`.
const WEB: &str = r#"{"metadata": {"flagSetId": "web"}, "flags": {
  "banner": {"state": "ENABLED", "variants": {"on": "ON"}, "defaultVariant": "on"},
  "app-only": {"state": "ENABLED", "variants": {"on": "ON"}, "defaultVariant": "on",
               "metadata": {"flagSetId": "mobile"}}
}}"#;

/// No flag set.
const PLAIN: &str = r#"{"flags": {
  "plain": {"state": "ENABLED", "variants": {"on": "ON"}, "defaultVariant": "on"}
}}"#;

type V2 = v2::service_client::ServiceClient<tonic::transport::Channel>;

async fn resolve(c: &mut V2, flag: &str, selector: Option<&str>) -> Result<String, Code> {
    let mut req = tonic::Request::new(v2::ResolveStringRequest {
        flag_key: flag.into(),
        context: Some(proto_ctx(&[("targetingKey", "u1")])),
    });
    if let Some(s) = selector {
        req.metadata_mut()
            .insert("flagd-selector", s.parse().unwrap());
    }
    c.resolve_string(req)
        .await
        .map(|r| r.into_inner().value.unwrap_or_default())
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_services_and_ofrep_honour_the_selector() {
    let s = serve_with(EXPERIMENTS, None, PipelineConfig::default(), |o| {
        o.ofrep_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    std::fs::write(s.dir.path().join("web.flagd.json"), WEB).unwrap();
    std::fs::write(s.dir.path().join("plain.flagd.json"), PLAIN).unwrap();
    let out = cohortd::reload::reload_now(s.dir.path(), &s.store);
    assert!(
        matches!(out, cohortd::reload::ReloadOutcome::Applied(_)),
        "{out:?}"
    );
    let url = match &s.running.grpc_addr {
        Bound::Tcp(a) => format!("http://{a}"),
        Bound::Unix(_) => unreachable!(),
    };
    let mut c = V2::connect(url.clone()).await.unwrap();

    // Which flags each selector lets a single evaluation find.
    let all = ["banner", "app-only", "plain", "exp"];
    let cases: [(Option<&str>, &[&str]); 7] = [
        (None, &all),
        (Some("flagSetId=web"), &["banner"]),
        (Some("flagSetId=mobile"), &["app-only"]),
        (Some("flagSetId="), &["plain", "exp"]),
        (Some("source=web.flagd.json"), &["banner", "app-only"]),
        (Some("plain.flagd.json"), &["plain"]),
        (Some("experiments.yaml"), &["exp"]),
    ];
    for (selector, found) in cases {
        for flag in all {
            let got = resolve(&mut c, flag, selector).await;
            if found.contains(&flag) {
                assert!(got.is_ok(), "{flag} under {selector:?}: {got:?}");
            } else {
                assert_eq!(got, Err(Code::NotFound), "{flag} under {selector:?}");
            }
        }
    }

    // v1 ResolveAll: the selected flags, the flag set reflected.
    let mut req = tonic::Request::new(v1::ResolveAllRequest {
        context: Some(proto_ctx(&[("targetingKey", "u1")])),
    });
    req.metadata_mut()
        .insert("flagd-selector", "flagSetId=web".parse().unwrap());
    let r = v1::service_client::ServiceClient::connect(url)
        .await
        .unwrap()
        .resolve_all(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.flags.keys().collect::<Vec<_>>(), ["banner"]);
    let meta = r.metadata.unwrap();
    assert_eq!(
        meta.fields["flagSetId"].kind,
        Some(prost_types::value::Kind::StringValue("web".into()))
    );

    // OFREP: the same selection on both endpoints.
    let addr = s.running.ofrep_addr.unwrap();
    let ctx = r#"{"context": {"targetingKey": "u1"}}"#;
    let sel = [("Flagd-Selector", "flagSetId=web")];
    let (status, body) = ofrep_post(addr, "/ofrep/v1/evaluate/flags", &sel, ctx).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["banner"]);
    assert_eq!(body["metadata"]["flagSetId"], "web");
    let (status, body) = ofrep_post(addr, "/ofrep/v1/evaluate/flags/banner", &sel, ctx).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("ON")));
    let (status, body) = ofrep_post(addr, "/ofrep/v1/evaluate/flags/plain", &sel, ctx).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("FLAG_NOT_FOUND"))
    );
    let (status, body) = ofrep_post(addr, "/ofrep/v1/evaluate/flags", &[], ctx).await;
    assert_eq!(status, 200);
    assert_eq!(body["flags"].as_array().unwrap().len(), 4, "{body}");

    // flagd v2 over Connect (same listener): the header reaches the service.
    for (sel, want) in [("flagSetId=web", "200"), ("flagSetId=mobile", "404")] {
        use prost::Message as _;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = v2::ResolveStringRequest {
            flag_key: "banner".into(),
            context: None,
        }
        .encode_to_vec();
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /flagd.evaluation.v2.Service/ResolveString HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/proto\r\nFlagd-Selector: {sel}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&body).await.unwrap();
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await.unwrap();
        assert_eq!(&out[9..12], want.as_bytes(), "Connect under {sel}");
    }
    assert!(s.running.shutdown().await);
}
