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
    println!("cargo:rerun-if-changed=proto");
    Ok(())
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
