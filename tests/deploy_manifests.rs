//! The deployment files start cohortd with arguments cohortd accepts: every
//! `cohortd` container in deploy/kubernetes/rendered/*.yaml and the Dockerfile's
//! CMD parse with cohortd's own command-line parser as `serve`. A renamed or
//! removed flag fails here instead of in a rollout. The experiments ConfigMap in
//! each render is also loaded as the kubelet would mount it and must be a valid
//! config identical to examples/configs.

mod support;

use std::path::{Path, PathBuf};

use clap::Parser;
use cohortd::cli::{Cli, Command};
use serde::Deserialize;
use serde_json::Value;
use support::runners::repo;

fn rendered() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes/rendered"))
        .expect("deploy/kubernetes/rendered exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rendered manifests");
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read manifest");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("manifest is YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// (file, container name, args) for every container running the cohortd image.
fn cohortd_containers() -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for file in rendered() {
        for doc in documents(&file) {
            let Some(pod) = doc.pointer("/spec/template/spec") else {
                continue;
            };
            for list in ["initContainers", "containers"] {
                for c in pod[list].as_array().into_iter().flatten() {
                    let image = c["image"].as_str().unwrap_or_default();
                    if !image
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .starts_with("cohortd")
                    {
                        continue;
                    }
                    let args = c["args"]
                        .as_array()
                        .expect("cohortd container has args")
                        .iter()
                        .map(|a| a.as_str().expect("string arg").to_owned())
                        .collect();
                    out.push((
                        file.display().to_string(),
                        c["name"].as_str().unwrap_or_default().to_owned(),
                        args,
                    ));
                }
            }
        }
    }
    out
}

fn parses_as_serve(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("cohortd".to_owned()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Serve(_),
            ..
        }) => Ok(()),
        Ok(other) => Err(format!("parsed as {:?}, not serve", other.command)),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn every_rendered_cohortd_container_has_valid_serve_args() {
    let found = cohortd_containers();
    assert!(
        found.len() >= 2,
        "expected a cohortd sidecar in each overlay, found {found:?}"
    );
    for (file, name, args) in found {
        if let Err(e) = parses_as_serve(&args) {
            panic!("{file}: container {name}: args {args:?} rejected by cohortd:\n{e}");
        }
    }
}

#[test]
fn dockerfile_cmd_is_a_valid_serve_invocation() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    // The final stage's CMD, with the config dir the image's ENV provides.
    let cmd = text
        .lines()
        .rfind(|l| l.starts_with("CMD "))
        .expect("CMD line");
    let args: Vec<String> = serde_json::from_str(&cmd["CMD ".len()..]).expect("exec-form CMD");
    let config_dir = text
        .lines()
        .rfind(|l| l.starts_with("ENV COHORTD_CONFIG_DIR="))
        .map(|l| l["ENV COHORTD_CONFIG_DIR=".len()..].to_owned())
        .expect("ENV COHORTD_CONFIG_DIR");
    let mut argv = args.clone();
    argv.push(format!("--config-dir={config_dir}"));
    if let Err(e) = parses_as_serve(&argv) {
        panic!("Dockerfile CMD {args:?} rejected by cohortd:\n{e}");
    }
}

#[test]
fn a_misspelt_flag_is_rejected() {
    // The check above can fail: the parser refuses unknown flags.
    let bad = ["serve", "--config-dir=/x", "--listn=0.0.0.0:8013"].map(String::from);
    assert!(parses_as_serve(&bad).is_err());
}

#[test]
fn the_rendered_experiments_configmap_is_a_valid_config_equal_to_the_examples() {
    let want = cohortd::Snapshot::load(&repo().join("examples/configs"))
        .expect("examples/configs is valid");
    for file in rendered() {
        let cm = documents(&file)
            .into_iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "cohortd-experiments")
            .unwrap_or_else(|| panic!("{}: no cohortd-experiments ConfigMap", file.display()));
        let data = cm["data"].as_object().expect("ConfigMap data");
        // Lay the keys out the way the kubelet mounts them: one file per key.
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in data {
            std::fs::write(dir.path().join(name), text.as_str().expect("string data"))
                .expect("write config file");
        }
        let got = cohortd::Snapshot::load(dir.path())
            .unwrap_or_else(|e| panic!("{}: the mounted config is invalid: {e}", file.display()));
        assert_eq!(
            got.version(),
            want.version(),
            "{}: the ConfigMap serves a different config than examples/configs",
            file.display()
        );
    }
}
