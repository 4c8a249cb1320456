//! Fuzzes the flat wire decoder of cohortd.v1 contexts
//! (`transport::wire::context`) against prost: the input is the bytes of an
//! `AssignRequest`'s context field. Nothing may panic, and the flat decoder is
//! never looser than prost plus the limits: whenever it accepts, prost decodes
//! the same request, the limits accept the decoded `Struct`, and every
//! attribute reads the same. When prost fails to decode, the flat decoder fails.
//!
//! Shared by the libFuzzer target (`fuzz/fuzz_targets/wire_context.rs`) and the
//! replay of `fuzz/corpus/wire_context/` in `tests/fuzz_regressions.rs`.

use cohortd::engine::Context;
use cohortd::transport::limits::Limits;
use cohortd::transport::pb;
use cohortd::transport::wire::context::WireContext;
use cohortd::transport::wire::request::AssignRequest;
use prost::Message;

/// Runs one input. Panics (the failure libFuzzer reports) on a broken invariant.
pub fn run(data: &[u8]) {
    let mut body = Vec::with_capacity(data.len() + 8);
    prost::encoding::bytes::encode(2, &data.to_vec(), &mut body);
    let limits = Limits::default();
    let prost = pb::AssignRequest::decode(&body[..]);
    let Ok(wire) = AssignRequest::decode(&body[..]) else {
        panic!("the context field itself always decodes as bytes");
    };
    let flat = WireContext::decode(&wire.context, &limits);
    let (Ok(req), Ok(flat)) = (&prost, &flat) else {
        assert!(
            prost.is_ok() || flat.is_err(),
            "prost refuses {data:?}, the flat decoder accepts it"
        );
        assert_eq!(
            WireContext::decode_with_json(&wire.context, &limits).err(),
            flat.as_ref().err().cloned(),
            "{data:?}"
        );
        return;
    };
    let ctx = req.context.clone().unwrap_or_default();
    assert!(
        limits.check_context(&ctx).is_ok(),
        "the flat decoder accepts a context over the limits: {data:?}"
    );
    assert_eq!(flat.len(), ctx.fields.len(), "{data:?}");
    for name in ctx.fields.keys() {
        assert_eq!(flat.get(name), Context::get(&ctx, name), "{data:?}");
    }
    let json = cohortd::transport::convert::struct_to_json(&ctx);
    assert_eq!(*flat.json(), json, "{data:?}");
    // The JSON the decoding walk builds (what the flagd resolver reads) is the
    // same, and the walk that builds it accepts exactly what the other does.
    let Ok(built) = WireContext::decode_with_json(&wire.context, &limits) else {
        panic!("the walk building JSON refuses what the other accepts: {data:?}");
    };
    assert_eq!(*built.json(), json, "{data:?}");
}
