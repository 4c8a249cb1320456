//! What the standard `OTEL_*` variables say about the OTLP/gRPC logs exporter,
//! read the way the OpenTelemetry SDK 0.33 reads them, because cohortd builds
//! and sends exposure log records itself (see [`super::otlp_logs`]) and must
//! keep every setting the SDK path honoured:
//!
//! * endpoint: the programmatic one, else `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`,
//!   else `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4317`; an
//!   endpoint without a scheme gets `https://` unless
//!   `OTEL_EXPORTER_OTLP_{LOGS_,}INSECURE=true` (then `http://`);
//! * headers: `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`
//!   (`k=v,k2=v2`, values URL-decoded, malformed pairs skipped);
//! * timeout per export call: the programmatic one, else
//!   `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`
//!   (milliseconds), else 10 s;
//! * compression: `OTEL_EXPORTER_OTLP_{LOGS_,}COMPRESSION`. This build (like
//!   the SDK path before it, whose `gzip-tonic` feature was off) sends
//!   uncompressed, so `gzip`/`zstd` are ignored with a warning, as the SDK did;
//! * batching: `OTEL_BLRP_MAX_QUEUE_SIZE`, `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`,
//!   `OTEL_BLRP_SCHEDULE_DELAY` (milliseconds), with cohortd's larger defaults.
//!
//! The build has no TLS feature, so an `https://` endpoint is a configuration
//! error (the SDK refused it the same way) rather than a silent plain-text send.

use std::time::Duration;

use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

/// The SDK's default gRPC endpoint.
const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
/// The SDK's default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Records buffered in built batches before the export task waits (and
/// cohortd's own queue starts dropping): the SDK default of 2048 dropped a
/// third of the records at exposure volumes (docs/benchmarks.md).
pub const DEFAULT_QUEUE: usize = 16_384;
/// Records per export call.
pub const DEFAULT_BATCH: usize = 2_048;
/// Longest a record waits for its batch to fill (the SDK's default).
pub const DEFAULT_DELAY: Duration = Duration::from_secs(1);

/// The logs exporter's settings.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// `http://host:port` of the collector.
    pub endpoint: String,
    /// Extra gRPC metadata on every export call.
    pub headers: MetadataMap,
    /// Bound on one export call, retries included.
    pub timeout: Duration,
    /// Most records waiting in built batches (`OTEL_BLRP_MAX_QUEUE_SIZE`).
    pub max_queue: usize,
    /// Records per export call (`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`, at most `max_queue`).
    pub max_batch: usize,
    /// Longest a partial batch waits (`OTEL_BLRP_SCHEDULE_DELAY`).
    pub delay: Duration,
}

/// A setting the exporter cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// Where the value came from (a variable name, or `endpoint`).
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl LogsConfig {
    /// The settings from the environment; `endpoint` and `timeout` override
    /// theirs when given.
    pub fn from_env(
        endpoint: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<LogsConfig, ConfigError> {
        let (endpoint, source) = match endpoint.filter(|e| !e.is_empty()) {
            Some(e) => (e.to_owned(), "endpoint"),
            None => match var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") {
                Some(e) => (e, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
                None => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                    Some(e) => (e, "OTEL_EXPORTER_OTLP_ENDPOINT"),
                    None => (DEFAULT_ENDPOINT.to_owned(), "endpoint"),
                },
            },
        };
        let insecure = std::env::var("OTEL_EXPORTER_OTLP_LOGS_INSECURE")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_INSECURE"))
            .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = with_scheme(endpoint, insecure);
        let uri: http::Uri = endpoint.parse().map_err(|e| ConfigError {
            var: source,
            reason: format!("invalid endpoint `{endpoint}`: {e}"),
        })?;
        if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            return Err(ConfigError {
                var: source,
                reason: format!(
                    "endpoint `{endpoint}` uses HTTPS, but this build exports over plain gRPC only"
                ),
            });
        }
        let timeout = timeout
            .or_else(|| parsed::<u64>("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT").map(Duration::from_millis))
            .or_else(|| parsed::<u64>("OTEL_EXPORTER_OTLP_TIMEOUT").map(Duration::from_millis))
            .unwrap_or(DEFAULT_TIMEOUT);
        warn_unsupported_compression();
        let max_queue = parsed("OTEL_BLRP_MAX_QUEUE_SIZE")
            .unwrap_or(DEFAULT_QUEUE)
            .max(1);
        let max_batch = parsed("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE")
            .unwrap_or(DEFAULT_BATCH)
            .clamp(1, max_queue);
        let delay = parsed::<u64>("OTEL_BLRP_SCHEDULE_DELAY")
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_DELAY);
        Ok(LogsConfig {
            endpoint,
            headers: headers_from_env(),
            timeout,
            max_queue,
            max_batch,
            delay,
        })
    }
}

/// The OTLP `INSECURE` rule: only a scheme-less endpoint gets one.
fn with_scheme(endpoint: String, insecure: bool) -> String {
    let has_scheme = endpoint
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
    match (has_scheme, insecure) {
        (true, _) => endpoint,
        (false, true) => format!("http://{endpoint}"),
        (false, false) => format!("https://{endpoint}"),
    }
}

/// Compression the SDK path could not do either (its `gzip-tonic`/`zstd-tonic`
/// features were off): it warned and sent uncompressed, and so does this.
fn warn_unsupported_compression() {
    for name in [
        "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
    ] {
        let Some(v) = var(name) else { continue };
        if v.eq_ignore_ascii_case("none") {
            return;
        }
        tracing::warn!(
            variable = name,
            value = %v,
            "compression is not supported by this build; exporting uncompressed"
        );
    }
}

/// `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`, as
/// gRPC metadata. A pair with an empty key or value, or one that is not a
/// valid header, is skipped with a warning (the SDK skipped them silently).
fn headers_from_env() -> MetadataMap {
    let mut map = MetadataMap::new();
    let Ok(raw) = std::env::var("OTEL_EXPORTER_OTLP_LOGS_HEADERS")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_HEADERS"))
    else {
        return map;
    };
    for pair in raw.split_terminator(',').map(str::trim) {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let v = url_decode(v).unwrap_or_else(|| v.to_owned());
        if k.is_empty() || v.is_empty() {
            continue;
        }
        let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes());
        match (key, MetadataValue::try_from(v.as_str())) {
            (Ok(key), Ok(value)) => {
                map.append(key, value);
            }
            _ => tracing::warn!(header = k, "skipping an invalid OTLP export header"),
        }
    }
    map
}

/// Percent-decoding as the SDK does it; `None` when the escapes are broken.
fn url_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_follow_the_insecure_rule() {
        assert_eq!(with_scheme("h:4317".into(), true), "http://h:4317");
        assert_eq!(with_scheme("h:4317".into(), false), "https://h:4317");
        assert_eq!(with_scheme("http://h:1".into(), false), "http://h:1");
        assert_eq!(with_scheme("h:1/p://q".into(), true), "http://h:1/p://q");
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("Basic%20abc%3D").as_deref(), Some("Basic abc="));
        assert_eq!(url_decode("plain").as_deref(), Some("plain"));
        assert_eq!(url_decode("bad%zz"), None);
        assert_eq!(url_decode("short%2"), None);
    }
}
