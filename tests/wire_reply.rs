//! Pre-encoded replies (`transport::wire::reply`) decode to exactly what the
//! generated builder (`cohortd_v1::assign_response`) produces, for every
//! experiment of the example configs and of the test kit's config (every form:
//! layers, holdouts, winners, targeting, structured values), over a sweep of
//! contexts and sticky assignments; `AssignAll` replies likewise.

mod support;

use std::path::Path;
use std::sync::Arc;

use cohortd::engine::{EvalOptions, Sticky};
use cohortd::transport::cohortd_v1::assign_response;
use cohortd::transport::pb;
use cohortd::transport::wire::reply::{AssignAllReply, AssignReply, Encoded, EncodedCache};
use cohortd::Snapshot;
use prost::Message;
use support::compile::compile_yaml;
use support::context::proto_ctx;

fn snapshots() -> Vec<(String, Arc<Snapshot>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![(
        "support::server::CONFIG".to_owned(),
        Arc::new(compile_yaml(support::server::CONFIG)),
    )];
    for name in [
        "examples/configs/checkout.json",
        "examples/configs/search.yaml",
    ] {
        let snap = Snapshot::load(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        out.push((name.to_owned(), Arc::new(snap)));
    }
    out
}

/// Contexts that reach every reason: plain units, numeric units, targeting
/// attributes, a missing unit.
fn contexts() -> Vec<prost_types::Struct> {
    let mut out = vec![proto_ctx(&[]), proto_ctx(&[("region", "US")])];
    for i in 0..150 {
        let id = format!("user-{i}");
        for key in ["userId", "targetingKey", "sessionId", "deviceId"] {
            out.push(proto_ctx(&[
                (key, id.as_str()),
                ("country", if i % 2 == 0 { "NL" } else { "DE" }),
                ("region", if i % 3 == 0 { "US" } else { "EU" }),
                ("plan", "pro"),
            ]));
        }
    }
    out
}

#[test]
fn assign_replies_decode_to_the_builders_response() {
    let mut checked = 0;
    for (name, snap) in snapshots() {
        let enc = Arc::new(Encoded::build(&snap));
        assert!(snap.served().count() > 0, "{name} serves nothing");
        for ctx in contexts() {
            for e in snap.served() {
                // Without and with a sticky assignment to each variant.
                let stickies = std::iter::once(None)
                    .chain(e.variants.iter().map(|v| Some(Sticky { variant: &v.key })));
                for sticky in stickies {
                    let opts = EvalOptions {
                        sticky,
                        ..EvalOptions::default()
                    };
                    let a = e.evaluate(&ctx, opts, &mut ());
                    let item = enc.item(&snap, &a).expect("assignment from this snapshot");
                    let bytes = AssignReply::new(enc.clone(), item).encode_to_vec();
                    let got = pb::AssignResponse::decode(&bytes[..]).unwrap();
                    let want = assign_response(&a, snap.version());
                    assert_eq!(got, want, "{name}: {}", e.key);
                    // Not only equal once decoded: as long as prost's encoding.
                    assert_eq!(bytes.len(), want.encoded_len(), "{name}: {}", e.key);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} assignments checked");
}

#[test]
fn assign_all_replies_decode_to_the_builders_response() {
    for (name, snap) in snapshots() {
        let cache = EncodedCache::default();
        for ctx in contexts().iter().step_by(7) {
            let enc = cache.get(&snap);
            let mut items = Vec::new();
            let mut want = pb::AssignAllResponse {
                assignments: Vec::new(),
                config_version: snap.version().to_owned(),
            };
            for e in snap.served() {
                let a = e.evaluate(ctx, EvalOptions::default(), &mut ());
                items.push(enc.item(&snap, &a).unwrap());
                want.assignments.push(assign_response(&a, snap.version()));
            }
            let reply = AssignAllReply::new(enc, items);
            let bytes = reply.encode_to_vec();
            assert_eq!(bytes.len(), reply.encoded_len());
            let got = pb::AssignAllResponse::decode(&bytes[..]).unwrap();
            assert_eq!(got, want, "{name}");
        }
    }
}

#[test]
fn the_cache_follows_the_served_snapshot() {
    let snaps = snapshots();
    let cache = EncodedCache::default();
    let first = cache.get(&snaps[0].1);
    assert!(
        Arc::ptr_eq(&first, &cache.get(&snaps[0].1)),
        "rebuilt for the same snapshot"
    );
    let other = cache.get(&snaps[1].1);
    assert!(!Arc::ptr_eq(&first, &other));
    // An assignment from another snapshot is not mistaken for one of this table.
    let (_, snap) = &snaps[0];
    let e = snap.served().next().unwrap();
    let a = e.evaluate(
        &proto_ctx(&[("userId", "u")]),
        EvalOptions::default(),
        &mut (),
    );
    assert!(other.item(&snaps[1].1, &a).is_none());
}
