//! Shared helpers of the exposure tests.
#![allow(dead_code)]

pub mod otlp;

use std::path::Path;

use cohortd::config::SourceFile;
use cohortd::Snapshot;

/// Compiles one YAML config document into a snapshot.
pub fn snapshot(yaml: &str) -> Snapshot {
    let path = Path::new("test.yaml");
    let doc = cohortd::config::parse_file(path, yaml.as_bytes()).expect("config parses");
    Snapshot::compile(&[SourceFile {
        path: path.to_owned(),
        doc,
    }])
    .expect("config compiles")
}

/// A JSON object context.
pub fn ctx(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("context must be an object"),
    }
}
