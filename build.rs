//! Compiles the gRPC contracts in `proto/` with the vendored `protoc`, so a fresh
//! machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Build scripts are single-threaded, so setting PROTOC here is race-free.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let protos: Vec<std::path::PathBuf> = std::fs::read_dir("proto")
        .map(|_| collect("proto"))
        .unwrap_or_default();
    if protos.is_empty() {
        return Ok(());
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("cohortd_descriptor.bin"))
        .compile_protos(&protos, &[std::path::PathBuf::from("proto")])?;
    flagd_wire_services(&out);
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}

/// The server side of `flagd.evaluation.v1.Service` and `v2.Service` with the
/// typed `Resolve*` requests read as `transport::flagd::wire::ResolveRequest`
/// (context kept as raw bytes, decoded straight into the JSON the flagd
/// evaluator reads) and answered as `transport::flagd::encode::Encoded` (the
/// typed response's bytes, written from the borrowed resolution; see those
/// modules). Same routes and wire messages as the generated services; the public descriptors (reflection, clients) are
/// the `.proto` files, unchanged. Written to `OUT_DIR/flagd_wire/`.
fn flagd_wire_services(out: &std::path::Path) {
    use tonic_build::manual::{Builder, Method, Service};
    let dir = out.join("flagd_wire");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/flagd_wire");
    for (version, pb) in [("v1", "pb_v1"), ("v2", "pb_v2")] {
        let pb = format!("crate::transport::flagd::{pb}");
        let method = |name: &str, route: &str, input: String, output: String| {
            Method::builder()
                .name(name)
                .route_name(route)
                .input_type(input)
                .output_type(output)
                .codec_path("tonic_prost::ProstCodec")
        };
        let wire = || "crate::transport::flagd::wire::ResolveRequest".to_string();
        let encoded = || "crate::transport::flagd::encode::Encoded".to_string();
        let mut service = Service::builder()
            .name("Service")
            .package(format!("flagd.evaluation.{version}"));
        // Answered as `encode::Encoded`: the bytes of the typed response.
        for (name, route) in [
            ("resolve_boolean", "ResolveBoolean"),
            ("resolve_string", "ResolveString"),
            ("resolve_float", "ResolveFloat"),
            ("resolve_int", "ResolveInt"),
            ("resolve_object", "ResolveObject"),
        ] {
            service = service.method(method(name, route, wire(), encoded()).build());
        }
        if version == "v1" {
            service = service.method(
                method(
                    "resolve_all",
                    "ResolveAll",
                    format!("{pb}::ResolveAllRequest"),
                    format!("{pb}::ResolveAllResponse"),
                )
                .build(),
            );
        }
        service = service.method(
            method(
                "event_stream",
                "EventStream",
                format!("{pb}::EventStreamRequest"),
                format!("{pb}::EventStreamResponse"),
            )
            .server_streaming()
            .build(),
        );
        Builder::new()
            .build_client(false)
            .out_dir(&dir)
            .compile(&[service.build()]);
    }
}

fn collect(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "proto") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
