//! TLS for listeners that leave the pod: the certificate, key and (for mutual
//! TLS) client CA come from files and are reloaded when the files change.
//!
//! Rotation without a restart: every listener's rustls `ServerConfig` asks a
//! [`ResolvesServerCert`] for the certificate on each handshake, and that
//! resolver reads an `ArcSwap<CertifiedKey>`; the client verifier likewise
//! delegates to an `ArcSwap`'d verifier. A reload builds the new pair aside and
//! swaps it in only when it is whole (the certificate parses, the key matches
//! it, the CA parses); otherwise the last good one keeps serving, the error is
//! logged and shown in `/readyz` (`tls.last_error`). Connections already open
//! keep the certificate they shook hands with.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::secret_file::{read_consistent, FileError};

/// Where the certificate files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The files in the order [`TlsReloader::apply`] expects their contents.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut p = vec![self.cert.clone(), self.key.clone()];
        p.extend(self.client_ca.clone());
        p
    }
}

/// A certificate, key or CA that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file was read but its content is not usable.
    #[error("{}: {why}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// What `/readyz` shows about TLS.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TlsStatus {
    /// Successful loads (the first one at start included).
    pub loads: u64,
    /// Rotations refused because the new files were broken.
    pub failed_reloads: u64,
    /// Why the last reload was refused; cleared by the next good one. While set,
    /// the previous certificate is still being served.
    pub last_error: Option<String>,
    /// Whether clients must present a certificate (mutual TLS).
    pub mutual: bool,
}

/// A parsed, consistent set of credentials.
struct Loaded {
    key: Arc<CertifiedKey>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

/// The live credentials of every TLS listener, swapped on rotation.
#[derive(Debug)]
pub struct TlsReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    key: ArcSwap<CertifiedKey>,
    verifier: Option<ArcSwap<Arc<dyn ClientCertVerifier>>>,
    status: Mutex<TlsStatus>,
}

impl TlsReloader {
    /// Reads and checks the files; an error here should stop the process (a
    /// server that cannot present its certificate must not start).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = read_consistent(&files.paths());
        let loaded = build(&files, &provider, contents)?;
        let mutual = loaded.verifier.is_some();
        Ok(Arc::new(TlsReloader {
            key: ArcSwap::new(loaded.key),
            verifier: loaded.verifier.map(ArcSwap::from_pointee),
            status: Mutex::new(TlsStatus {
                loads: 1,
                mutual,
                ..TlsStatus::default()
            }),
            files,
            provider,
        }))
    }

    /// The files followed.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Installs freshly read file contents (in [`TlsFiles::paths`] order), or
    /// keeps the current credentials and records why not.
    pub fn apply(&self, contents: Vec<Result<Vec<u8>, FileError>>) -> Result<(), TlsError> {
        let result = build(&self.files, &self.provider, contents);
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(loaded) => {
                self.key.store(loaded.key);
                if let (Some(slot), Some(v)) = (&self.verifier, loaded.verifier) {
                    slot.store(Arc::new(v));
                }
                status.loads += 1;
                status.last_error = None;
                tracing::info!(cert = %self.files.cert.display(), "tls: rotated certificate loaded");
                Ok(())
            }
            Err(e) => {
                status.failed_reloads += 1;
                status.last_error = Some(e.to_string());
                tracing::error!(error = %e, "tls: rotated certificate refused; still serving the previous one");
                Err(e)
            }
        }
    }

    /// A snapshot of the status.
    pub fn status(&self) -> TlsStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A rustls server config over the live credentials, offering `alpn`
    /// (`h2` for gRPC, `http/1.1` for HTTP listeners). Built once per listener.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let invalid = |e: rustls::Error| TlsError::Invalid {
            path: self.files.cert.clone(),
            why: e.to_string(),
        };
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?;
        let builder = match &self.verifier {
            Some(_) => builder.with_client_cert_verifier(Arc::new(Verifier(self.clone()))),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn build(
    files: &TlsFiles,
    provider: &CryptoProvider,
    contents: Vec<Result<Vec<u8>, FileError>>,
) -> Result<Loaded, TlsError> {
    let invalid = |path: &PathBuf, why: String| TlsError::Invalid {
        path: path.clone(),
        why,
    };
    let mut contents = contents.into_iter();
    let mut next = || {
        contents.next().unwrap_or_else(|| {
            Err(FileError {
                path: files.cert.clone(),
                why: "internal: fewer file contents than files".into(),
            })
        })
    };
    let cert_pem = next()?;
    let key_pem = next()?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            &files.cert,
            "no CERTIFICATE block in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(&files.key, format!("not a PEM private key: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        invalid(
            &files.key,
            format!("cannot be used with {}: {e}", files.cert.display()),
        )
    })?;
    let verifier = match &files.client_ca {
        None => None,
        Some(ca_path) => {
            let ca_pem = next()?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca_pem) {
                let c = c.map_err(|e| invalid(ca_path, format!("not a PEM CA bundle: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| invalid(ca_path, format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(invalid(ca_path, "no CERTIFICATE block in the file".into()));
            }
            let v = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(provider.clone()),
            )
            .build()
            .map_err(|e| invalid(ca_path, e.to_string()))?;
            Some(v)
        }
    };
    Ok(Loaded {
        key: Arc::new(certified),
        verifier,
    })
}

/// Hands out the current certificate on every handshake.
#[derive(Debug)]
struct Resolver(Arc<TlsReloader>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.key.load_full())
    }
}

/// Verifies client certificates against the current CA bundle.
#[derive(Debug)]
struct Verifier(Arc<TlsReloader>);

impl Verifier {
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        match &self.0.verifier {
            Some(v) => v.load().as_ref().clone(),
            // Never installed without a CA (see `server_config`).
            None => unreachable_verifier(),
        }
    }
}

/// A verifier that accepts nobody; stands in where none can be (defensive).
fn unreachable_verifier() -> Arc<dyn ClientCertVerifier> {
    let roots = RootCertStore::empty();
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap_or_else(|_| WebPkiClientVerifier::no_client_auth())
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints would borrow from a verifier that may be swapped out; clients
        // send their certificate without them.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}
