//! Prometheus metrics: one registry for the whole process, served on `/metrics`.
//!
//! The API is narrow on purpose. Request metrics are pre-resolved per gRPC method
//! ([`Metrics::rpc`]) so the request path only bumps atomics; reload and config
//! metrics are read from the [`Store`] at scrape time ([`Metrics::watch_store`]),
//! so the reload code never has to know about metrics. Other subsystems add their
//! own families with [`Metrics::register`] or [`Metrics::register_collector`].

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};

use crate::reload::Store;

/// gRPC status code names, indexed by code number (as in the gRPC spec).
pub const GRPC_CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    service: String,
    method: String,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
}

/// The counters and histogram of one gRPC method, shared with the registry.
/// Recording is a few atomic operations and one short histogram lock; a code's
/// counter joins the registry on its first use, so scrapes list only codes seen.
#[derive(Debug, Clone)]
pub struct RpcStats(Arc<RpcInner>);

#[derive(Debug)]
struct RpcInner {
    service: String,
    method: String,
    family: Family<RpcCodeLabels, Counter>,
    codes: [OnceLock<Counter>; 17],
    latency: Histogram,
}

impl RpcStats {
    /// Records one finished call: its gRPC status code and duration in seconds.
    /// Codes outside the spec's 0..=16 count as UNKNOWN.
    #[inline]
    pub fn record(&self, code: i32, seconds: f64) {
        let i = usize::try_from(code).ok().filter(|&c| c < 17).unwrap_or(2);
        self.counter(i).inc();
        self.0.latency.observe(seconds);
    }

    fn counter(&self, i: usize) -> &Counter {
        let s = &self.0;
        s.codes[i].get_or_init(|| {
            s.family
                .get_or_create(&RpcCodeLabels {
                    service: s.service.clone(),
                    method: s.method.clone(),
                    code: GRPC_CODE_NAMES[i],
                })
                .clone()
        })
    }

    /// Calls recorded with `code` so far (for tests and diagnostics).
    pub fn count(&self, code: tonic::Code) -> u64 {
        self.0.codes[code as usize].get().map_or(0, Counter::get)
    }
}

/// The process's metrics. Share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Open connections by listener (`grpc`, `admin`).
    pub open_connections: Family<[(&'static str, &'static str); 1], Gauge>,
    /// Open Watch and EventStream streams.
    pub open_streams: Gauge,
    requests: Family<RpcCodeLabels, Counter>,
    latency: Family<RpcLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    // 25 µs to ~0.8 s: assignment calls take microseconds, Watch streams longer.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RpcCodeLabels, Counter>::default();
        let latency = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let mut registry = Registry::default();
        registry.register(
            "cohortd_grpc_requests",
            "gRPC calls finished, by service, method and status code",
            requests.clone(),
        );
        registry.register(
            "cohortd_grpc_request_duration_seconds",
            "gRPC call latency from request headers to final status, by method",
            latency.clone(),
        );
        let open_connections = Family::<[(&'static str, &'static str); 1], Gauge>::default();
        registry.register(
            "cohortd_open_connections",
            "Open connections, by listener (grpc, admin)",
            open_connections.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "cohortd_open_streams",
            "Open Watch and flagd EventStream streams",
            open_streams.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            open_connections,
            open_streams,
            requests,
            latency,
        }
    }
}

impl Metrics {
    /// A fresh registry with the request families registered.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The stats handle of one gRPC method. Resolve it once, at startup: the handle
    /// shares its atomics with the registry, so recording takes no map lookup.
    /// (The latency histogram is listed from the start, with a zero count.)
    pub fn rpc(&self, service: &str, method: &str) -> RpcStats {
        let latency = self
            .latency
            .get_or_create(&RpcLabels {
                service: service.to_owned(),
                method: method.to_owned(),
            })
            .clone();
        RpcStats(Arc::new(RpcInner {
            service: service.to_owned(),
            method: method.to_owned(),
            family: self.requests.clone(),
            codes: Default::default(),
            latency,
        }))
    }

    /// Registers a metric family (name without the `_total` suffix for counters).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// Registers a collector, asked for its values on every scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock().register_collector(collector);
    }

    /// Exports the served config and reload history of `store` on every scrape.
    pub fn watch_store(&self, store: Arc<Store>) {
        self.register_collector(Box::new(StoreCollector { store }));
    }

    /// The Prometheus text exposition of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.lock());
        out
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads config and reload metrics from the store at scrape time.
#[derive(Debug)]
struct StoreCollector {
    store: Arc<Store>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.store.load();
        let status = self.store.status();

        let loaded = ConstGauge::new(i64::from(snap.is_some()));
        loaded.encode(encoder.encode_descriptor(
            "cohortd_config_loaded",
            "1 when a valid config is being served, 0 before the first one",
            None,
            loaded.metric_type(),
        )?)?;

        if let Some(s) = &snap {
            let mut m = encoder.encode_descriptor(
                "cohortd_config",
                "The config version being served (content-derived)",
                None,
                MetricType::Info,
            )?;
            m.encode_info(&[("version", s.version())])?;
        }

        let n = snap.as_ref().map_or(0, |s| s.experiments().len());
        let served = snap.as_ref().map_or(0, |s| s.served().count());
        let mut m = encoder.encode_descriptor(
            "cohortd_experiments_loaded",
            "Experiments in the served config, by whether they are served (drafts are not)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(served as i64).encode(m.encode_family(&[("served", "true")])?)?;
        ConstGauge::new((n - served) as i64).encode(m.encode_family(&[("served", "false")])?)?;

        let mut m = encoder.encode_descriptor(
            "cohortd_config_reloads",
            "Reload attempts by outcome: applied (new version), unchanged (identical content), rejected (invalid; last good config kept)",
            None,
            MetricType::Counter,
        )?;
        for (outcome, v) in [
            ("applied", status.applied),
            ("unchanged", status.unchanged),
            ("rejected", status.rejected),
        ] {
            ConstCounter::new(v).encode(m.encode_family(&[("outcome", outcome)])?)?;
        }

        if let Some(t) = status.last_success {
            let age = SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs_f64();
            let g = ConstGauge::new(age);
            g.encode(encoder.encode_descriptor(
                "cohortd_seconds_since_last_successful_reload",
                "Seconds since the config was last loaded or confirmed unchanged",
                None,
                g.metric_type(),
            )?)?;
        }
        let failing = ConstGauge::new(i64::from(status.last_error.is_some()));
        failing.encode(encoder.encode_descriptor(
            "cohortd_config_last_reload_failed",
            "1 when the most recent reload was rejected (see /readyz for the error)",
            None,
            failing.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_stats_show_up_in_the_exposition() {
        let m = Metrics::new();
        let s = m.rpc("cohortd.v1.Assignment", "Assign");
        s.record(0, 0.0001);
        s.record(5, 0.0002);
        s.record(99, 0.0002);
        assert_eq!(s.count(tonic::Code::NotFound), 1);
        let text = m.encode();
        assert!(text.contains(
            r#"cohortd_grpc_requests_total{service="cohortd.v1.Assignment",method="Assign",code="NOT_FOUND"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"cohortd_grpc_requests_total{service="cohortd.v1.Assignment",method="Assign",code="UNKNOWN"} 1"#
        ));
        assert!(text.contains(r#"cohortd_grpc_request_duration_seconds_count{service="cohortd.v1.Assignment",method="Assign"} 3"#));
    }

    #[test]
    fn store_metrics_are_read_at_scrape_time() {
        let m = Metrics::new();
        let store = Store::new();
        m.watch_store(store.clone());
        let text = m.encode();
        assert!(text.contains("cohortd_config_loaded 0"), "{text}");
        assert!(!text.contains("cohortd_config_info"));
        store.reject_with("bad file".into());
        let text = m.encode();
        assert!(
            text.contains(r#"cohortd_config_reloads_total{outcome="rejected"} 1"#),
            "{text}"
        );
        assert!(text.contains("cohortd_config_last_reload_failed 1"));
    }
}
