//! Fuzzes request decoding as the gRPC service sees it: bytes -> a
//! `cohortd.v1.AssignRequest` or `AssignAllRequest` (protobuf) -> the request
//! limits of `transport::limits` -> evaluation of the example config with the
//! decoded context. Nothing may panic, and a context the limits accept must
//! evaluate.
//!
//! Shared by the libFuzzer target (`fuzz/fuzz_targets/request.rs`) and the replay of
//! `fuzz/corpus/request/` and `fuzz/regressions/request/` in `tests/fuzz_regressions.rs`.

use std::path::Path;
use std::sync::OnceLock;

use cohortd::config::{parse_file, SourceFile};
use cohortd::engine::EvalOptions;
use cohortd::transport::limits::Limits;
use cohortd::transport::pb::{AssignAllRequest, AssignRequest};
use cohortd::Snapshot;
use prost::Message;

/// The example config every accepted request is evaluated against.
fn snapshot() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let path = Path::new("checkout.json");
        let doc = parse_file(path, include_bytes!("../../examples/configs/checkout.json"))
            .expect("the example config parses");
        Snapshot::compile(&[SourceFile {
            path: path.into(),
            doc,
        }])
        .expect("the example config compiles")
    })
}

/// Runs one input. Panics (the failure libFuzzer reports) on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let snap = snapshot();
    let (context, keys) = if selector % 2 == 0 {
        let Ok(req) = AssignRequest::decode(body) else {
            return;
        };
        if limits.check_key("experiment key", &req.experiment).is_err() {
            return;
        }
        (req.context.unwrap_or_default(), vec![req.experiment])
    } else {
        let Ok(req) = AssignAllRequest::decode(body) else {
            return;
        };
        if limits.check_assign_all(&req.experiments).is_err() {
            return;
        }
        (req.context.unwrap_or_default(), req.experiments)
    };
    if limits.check_context(&context).is_err() {
        return;
    }
    for e in snap.experiments() {
        if keys.is_empty() || keys.iter().any(|k| **k == *e.key) {
            let _ = e.evaluate(&context, EvalOptions::default(), &mut ());
        }
    }
}
