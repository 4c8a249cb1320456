//! Config text compiled into a [`Snapshot`] in memory, the way a reload would,
//! and the version a payload will be served under.

use std::path::Path;

use cohortd::config::{parse_file, ConfigErrors, SourceFile};
use cohortd::Snapshot;

/// Compiles config files given as `(file name, text)`; the extension picks the
/// format. Every error of every file is returned, as a reload reports them.
pub fn try_compile(files: &[(&str, &str)]) -> Result<Snapshot, ConfigErrors> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in files {
        match parse_file(Path::new(name), text.as_bytes()) {
            Ok(doc) => parsed.push(SourceFile {
                path: name.into(),
                doc,
            }),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Snapshot::compile(&parsed)
}

/// Compiles one file named `name` (JSON or YAML by extension), panicking with
/// every error if it is invalid.
pub fn compile_named(name: &str, text: &str) -> Snapshot {
    try_compile(&[(name, text)]).unwrap_or_else(|e| panic!("invalid test config {name}:\n{e}"))
}

/// Compiles one JSON config text.
pub fn compile(json: &str) -> Snapshot {
    compile_named("test.json", json)
}

/// Compiles one YAML config text.
pub fn compile_yaml(yaml: &str) -> Snapshot {
    compile_named("test.yaml", yaml)
}

/// Compiles one experiment (or document) given as a JSON value.
pub fn compile_value(v: &serde_json::Value) -> Snapshot {
    compile(&v.to_string())
}

/// The version cohortd serves for `files` (`(file name, text)`): tests compare
/// it with what a server reports to know which payload it is serving.
pub fn version_of<N: AsRef<str>, T: AsRef<str>>(files: &[(N, T)]) -> String {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_ref(), t.as_ref()))
        .collect();
    try_compile(&files)
        .unwrap_or_else(|e| panic!("invalid payload:\n{e}"))
        .version()
        .to_owned()
}
