//! Optional shared-secret authentication of callers (`--auth-token-file`).
//!
//! A caller presents the token as `authorization: Bearer <token>` (gRPC
//! metadata or HTTP header) or as `X-API-Key: <token>` (the header OFREP
//! defines). Tokens are compared in constant time. The file holds one token per
//! line (blank lines and `#` comments ignored), so a rotation can accept the old
//! and the new token for a while; it is re-read when it changes, and a rotation
//! that leaves no token keeps the previous ones (logged). Health — the gRPC
//! health service, `/healthz`, `/readyz` — never needs a token: the kubelet does
//! not send one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;

use super::gate::{Check, Gate, GateLayer};
use super::secret_file::{read_bounded, FileError};

/// Shortest token accepted without a warning.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The accepted tokens, swapped when the file changes.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: ArcSwap<Vec<Box<[u8]>>>,
}

fn parse(path: &Path, bytes: Result<Vec<u8>, FileError>) -> Result<Vec<Box<[u8]>>, FileError> {
    let bytes = bytes?;
    let err = |why: &str| FileError {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| err("the token file is not UTF-8"))?;
    let tokens: Vec<Box<[u8]>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().into())
        .collect();
    if tokens.is_empty() {
        return Err(err("no token in the file (one token per line)"));
    }
    if tokens
        .iter()
        .any(|t| t.iter().any(|b| !b.is_ascii_graphic()))
    {
        return Err(err(
            "a token has spaces or non-ASCII characters; HTTP headers cannot carry it",
        ));
    }
    if tokens.iter().any(|t| t.len() < MIN_TOKEN_BYTES) {
        tracing::warn!(path = %path.display(), min = MIN_TOKEN_BYTES, "auth: a token is shorter than recommended");
    }
    Ok(tokens)
}

impl TokenStore {
    /// Reads the token file; an error here should stop the process.
    pub fn load(path: PathBuf) -> Result<Arc<Self>, FileError> {
        let tokens = parse(&path, read_bounded(&path))?;
        Ok(Arc::new(TokenStore {
            path,
            tokens: ArcSwap::from_pointee(tokens),
        }))
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Installs a re-read of the file, or keeps the current tokens.
    pub fn apply(&self, bytes: Result<Vec<u8>, FileError>) {
        match parse(&self.path, bytes) {
            Ok(t) => {
                self.tokens.store(Arc::new(t));
                tracing::info!(path = %self.path.display(), "auth: token file reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "auth: token file refused; the previous tokens stay valid")
            }
        }
    }

    /// Whether `presented` is one of the tokens (constant time per token).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let tokens = self.tokens.load();
        let mut ok = subtle::Choice::from(0);
        for t in tokens.iter() {
            ok |= t.as_ref().ct_eq(presented);
        }
        ok.into()
    }
}

/// The token a request presents, if any.
fn presented<B>(req: &http::Request<B>) -> Option<&[u8]> {
    let h = req.headers();
    if let Some(v) = h.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        return match v.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => Some(v[7..].trim_ascii()),
            _ => None,
        };
    }
    h.get("x-api-key").map(|v| v.as_bytes().trim_ascii())
}

/// Paths that never need a token.
fn is_health(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path == "/healthz" || path == "/readyz"
}

/// How a refusal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// gRPC status UNAUTHENTICATED.
    Grpc,
    /// HTTP 401 with `WWW-Authenticate: Bearer`.
    Http,
}

/// Refuses calls without a valid token (health excepted).
pub type AuthLayer = GateLayer<TokenCheck>;

/// A service behind [`AuthLayer`].
pub type Auth<S> = Gate<S, TokenCheck>;

impl AuthLayer {
    /// A layer checking against `store`.
    pub fn new(store: Arc<TokenStore>, style: Style) -> Self {
        GateLayer(TokenCheck { store, style })
    }
}

/// The token check of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct TokenCheck {
    store: Arc<TokenStore>,
    style: Style,
}

impl Check for TokenCheck {
    fn refuse<B, RB: Default>(&self, req: &http::Request<B>) -> Option<http::Response<RB>> {
        if is_health(req.uri().path()) || presented(req).is_some_and(|t| self.store.accepts(t)) {
            return None;
        }
        Some(match self.style {
            Style::Grpc => tonic::Status::unauthenticated(
                "missing or wrong token: send `authorization: Bearer <token>` (see --auth-token-file)",
            )
            .into_http(),
            Style::Http => {
                let mut r = http::Response::new(RB::default());
                *r.status_mut() = http::StatusCode::UNAUTHORIZED;
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"cohortd\""),
                );
                r
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(text: &str) -> Arc<TokenStore> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, text).unwrap();
        TokenStore::load(p).unwrap()
    }

    #[test]
    fn tokens_are_lines_and_only_those_match() {
        let s = store("# rotation\nold-token-0123456789\n\nnew-token-0123456789\n");
        assert!(s.accepts(b"old-token-0123456789"));
        assert!(s.accepts(b"new-token-0123456789"));
        assert!(!s.accepts(b"new-token-012345678"));
        assert!(!s.accepts(b""));
        assert!(!s.accepts(b"# rotation"));
    }

    #[test]
    fn an_empty_rotation_keeps_the_old_tokens() {
        let s = store("first-token-0123456789\n");
        s.apply(Ok(b"\n# nothing\n".to_vec()));
        assert!(s.accepts(b"first-token-0123456789"));
        s.apply(Ok(b"second-token-0123456789".to_vec()));
        assert!(!s.accepts(b"first-token-0123456789"));
        assert!(s.accepts(b"second-token-0123456789"));
    }

    #[test]
    fn the_token_is_read_from_bearer_or_api_key() {
        let req = |k: &str, v: &str| http::Request::builder().header(k, v).body(()).unwrap();
        assert_eq!(
            presented(&req("authorization", "Bearer abc")),
            Some(&b"abc"[..])
        );
        assert_eq!(
            presented(&req("authorization", "bearer abc ")),
            Some(&b"abc"[..])
        );
        assert_eq!(presented(&req("authorization", "Basic abc")), None);
        assert_eq!(presented(&req("x-api-key", "abc")), Some(&b"abc"[..]));
        assert!(is_health("/grpc.health.v1.Health/Check"));
        assert!(!is_health("/cohortd.v1.Assignment/Assign"));
    }
}
