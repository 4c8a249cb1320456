//! TLS and mutual TLS seen by clients we did not write (issue 17): Python's
//! grpcio (its own TLS stack, BoringSSL) calls the gRPC listener and Python's
//! ssl module the admin listener, with certificates generated here by rcgen and
//! handed over as files. Server certificates are verified, a client without a
//! certificate (or with another CA's) is refused under mTLS, and a certificate
//! rotated the kubelet's way (`..data` swap) is picked up without a restart.
//! tests/python/tls_client.py does one check per run.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::tls::{serve_tls, tls_files, write_secret, Ca};

/// Writes `text` to `dir/name` and returns the path (what the client reads).
fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// One run of tls_client.py.
struct Check<'a> {
    python: &'a Path,
    kind: &'static str,
    addr: SocketAddr,
    ca: &'a Path,
    client: Option<(&'a Path, &'a Path)>,
    wait_secs: u32,
}

impl Check<'_> {
    /// Runs the client expecting `expect` (`serving` or `refused`); `Err` holds
    /// what the client saw instead. Blocking: call from a blocking thread.
    fn expect(&self, expect: &str) -> Result<String, String> {
        let mut cmd = Command::new(self.python);
        // grpc-core logs every failed handshake of the retry loop at INFO.
        cmd.env("GRPC_VERBOSITY", "ERROR");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tls_client.py"))
            .arg(self.kind)
            .args(["--addr", &self.addr.to_string()])
            .arg("--ca")
            .arg(self.ca)
            .args(["--expect", expect, "--wait", &self.wait_secs.to_string()]);
        if let Some((cert, key)) = self.client {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let out = cmd.output().expect("cannot run the Python client");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            // Shown with --nocapture: what each check saw.
            eprintln!("{} {} {expect}: {}", self.kind, self.addr, said.trim());
            Ok(said)
        } else {
            Err(format!(
                "{} {} expected {expect}: {said}",
                self.kind, self.addr
            ))
        }
    }
}

/// Runs `f` on a blocking thread (the in-process server keeps the runtime).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_verifies_the_server_and_follows_a_rotation() {
    let Some(python) = support::runners::python() else {
        return;
    };
    let (ca1, ca2) = (Ca::new("first ca"), Ca::new("second ca"));
    let secret = tempfile::tempdir().unwrap();
    write_secret(secret.path(), &ca1.leaf("first"), &ca1.pem);
    let (_srv, grpc, admin) = serve_tls(tls_files(secret.path(), false)).await;
    let files = tempfile::tempdir().unwrap();
    let (ca1_pem, ca2_pem) = (
        file(files.path(), "ca1.pem", &ca1.pem),
        file(files.path(), "ca2.pem", &ca2.pem),
    );

    let run = move |kind, addr, ca: PathBuf, expect: &'static str, wait_secs| {
        let python = python.clone();
        blocking(move || {
            Check {
                python: &python,
                kind,
                addr,
                ca: &ca,
                client: None,
                wait_secs,
            }
            .expect(expect)
        })
    };

    // The served certificate chains to the first CA and names localhost.
    run("grpc", grpc, ca1_pem.clone(), "serving", 0)
        .await
        .unwrap();
    run("https", admin, ca1_pem.clone(), "serving", 0)
        .await
        .unwrap();
    // The client really verifies it: trusting another CA gets nowhere.
    run("grpc", grpc, ca2_pem.clone(), "refused", 0)
        .await
        .unwrap();
    run("https", admin, ca2_pem.clone(), "refused", 0)
        .await
        .unwrap();

    // cert-manager issues from a new CA; the Secret volume swaps `..data`.
    write_secret(secret.path(), &ca2.leaf("second"), &ca2.pem);
    run("grpc", grpc, ca2_pem.clone(), "serving", 20)
        .await
        .expect("the rotated certificate was not served without a restart");
    run("https", admin, ca2_pem, "serving", 20).await.unwrap();
    // And the old certificate is no longer what the server presents.
    run("grpc", grpc, ca1_pem.clone(), "refused", 0)
        .await
        .unwrap();
    run("https", admin, ca1_pem, "refused", 0).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_under_mutual_tls_needs_a_certificate_from_the_ca() {
    let Some(python) = support::runners::python() else {
        return;
    };
    let ca = Ca::new("test ca");
    let secret = tempfile::tempdir().unwrap();
    write_secret(secret.path(), &ca.leaf("server"), &ca.pem);
    let (_srv, grpc, admin) = serve_tls(tls_files(secret.path(), true)).await;
    let files = tempfile::tempdir().unwrap();
    let d = files.path();
    let ca_pem = file(d, "ca.pem", &ca.pem);
    let client = ca.leaf("client");
    let stranger = Ca::new("other ca").leaf("stranger");
    let client = (
        file(d, "client.crt", &client.cert),
        file(d, "client.key", &client.key),
    );
    let stranger = (
        file(d, "stranger.crt", &stranger.cert),
        file(d, "stranger.key", &stranger.key),
    );

    let run = move |kind, addr, client: Option<(PathBuf, PathBuf)>, expect: &'static str| {
        let (python, ca) = (python.clone(), ca_pem.clone());
        blocking(move || {
            Check {
                python: &python,
                kind,
                addr,
                ca: &ca,
                client: client.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
                wait_secs: 0,
            }
            .expect(expect)
        })
    };
    for (kind, addr) in [("grpc", grpc), ("https", admin)] {
        run(kind, addr, Some(client.clone()), "serving")
            .await
            .expect("a client with a certificate from the CA");
        run(kind, addr, None, "refused")
            .await
            .expect("a client without a certificate");
        run(kind, addr, Some(stranger.clone()), "refused")
            .await
            .expect("a client with another CA's certificate");
    }
}
