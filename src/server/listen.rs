//! Where the gRPC server listens (`--listen`: TCP or a Unix socket), parsed
//! and displayed the way the flag is written, and what it actually bound.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address (`127.0.0.1:8013`, `[::1]:8013`).
    Tcp(SocketAddr),
    /// A Unix domain socket path (`unix:/run/cohortd.sock`).
    Unix(PathBuf),
}

/// A `--listen` value that is neither `HOST:PORT` nor `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a listen address: use IP:PORT (e.g. 127.0.0.1:8013, [::1]:8013) or unix:/path/to.sock")]
pub struct ListenParseError(String);

impl std::str::FromStr for Listen {
    type Err = ListenParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ListenParseError(s.to_owned()));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        s.parse()
            .map(Listen::Tcp)
            .map_err(|_| ListenParseError(s.to_owned()))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What the listener actually bound (port 0 resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "127.0.0.1:8013".parse::<Listen>(),
            Ok(Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8013))))
        );
        assert_eq!(
            "unix:/run/c.sock".parse::<Listen>(),
            Ok(Listen::Unix("/run/c.sock".into()))
        );
        let e = "localhost".parse::<Listen>().unwrap_err();
        assert!(e.to_string().contains("unix:/path"));
        assert!("unix:".parse::<Listen>().is_err());
    }
}
