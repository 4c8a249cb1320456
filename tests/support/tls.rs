//! Helpers of the security tests: certificates generated with rcgen, a TLS
//! client (tokio-rustls under a tonic channel, and raw HTTP/1.1 over TLS), and
//! a Secret volume laid out the kubelet's way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cohortd::security::tls::TlsFiles;
use cohortd::security::SecurityOptions;
use cohortd::server::{Bound, Listen};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

use super::server::TestServer;

/// A certificate authority that signs server and client certificates.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate chain and its key, PEM.
#[derive(Clone)]
pub struct Pair {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `localhost` / 127.0.0.1, named `cn`.
    pub fn leaf(&self, cn: &str) -> Pair {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

fn client_config(ca_pem: &str, client: Option<&Pair>, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut cfg = match client {
        Some(p) => {
            let chain = CertificateDer::pem_slice_iter(p.cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

/// Opens a TLS connection to `addr` trusting `ca_pem`, optionally presenting
/// `client`.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Pair>,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = TlsConnector::from(client_config(ca_pem, client, alpn));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// The leaf certificate the server presents (DER).
pub async fn served_cert(addr: SocketAddr, ca_pem: &str, client: Option<&Pair>) -> Vec<u8> {
    let s = tls_connect(addr, ca_pem, client, b"h2").await.unwrap();
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// DER of the first certificate in `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A gRPC channel over TLS to `addr`.
pub async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<Pair>,
) -> Result<Channel, tonic::transport::Error> {
    let ca = ca_pem.to_owned();
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(tower::service_fn(move |_| {
            let (ca, client) = (ca.clone(), client.clone());
            async move {
                let s = tls_connect(addr, &ca, client.as_ref(), b"h2").await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
}

/// An HTTP/1.1 GET over TLS, returning status and body.
pub async fn https_get(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Pair>,
    path: &str,
) -> (u16, String) {
    // A refused handshake or write reads as status 0.
    let Ok(mut s) = tls_connect(addr, ca_pem, client, b"http/1.1").await else {
        return (0, String::new());
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    // A TLS peer may close without close_notify; what was read is the answer.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_owned())
}

/// Writes a Secret volume holding `tls.crt`, `tls.key` and `ca.crt` the
/// kubelet's way (a `..data` swap), so a rewrite is a certificate rotation.
pub fn write_secret(dir: &std::path::Path, pair: &Pair, ca: &str) {
    super::kubelet::AtomicWriter::new(dir)
        .write(&[
            ("tls.crt", &pair.cert),
            ("tls.key", &pair.key),
            ("ca.crt", ca),
        ])
        .unwrap();
}

/// The certificate files of a Secret volume written by [`write_secret`];
/// `mutual` also names its `ca.crt` as the client CA (mutual TLS).
pub fn tls_files(dir: &std::path::Path, mutual: bool) -> TlsFiles {
    TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        client_ca: mutual.then(|| dir.join("ca.crt")),
    }
}

/// The in-process server with its gRPC and admin listeners on 0.0.0.0 (so TLS
/// applies; loopback listeners stay plaintext), certificates polled every
/// 100 ms; returns it with those two listeners' 127.0.0.1 addresses.
pub async fn serve_tls(tls: TlsFiles) -> (TestServer, SocketAddr, SocketAddr) {
    let srv = super::server::start(true, |o| {
        o.listen = Listen::Tcp("0.0.0.0:0".parse().unwrap());
        o.admin_listen = Some("0.0.0.0:0".parse().unwrap());
        o.security = SecurityOptions {
            tls: Some(tls),
            poll_interval: Duration::from_millis(100),
            ..SecurityOptions::default()
        };
    })
    .await;
    let Bound::Tcp(g) = srv.running.grpc_addr else {
        panic!("tcp")
    };
    let a = srv.running.admin_addr.unwrap();
    let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    (srv, local(g.port()), local(a.port()))
}
