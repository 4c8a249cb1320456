//! Per-route request metrics for the OFREP listener: requests by route and HTTP
//! status, and latency by route. Routes are the two fixed templates (never the
//! flag key), and statuses are the handful the handlers produce, so callers
//! cannot grow the label set.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::metrics::Metrics;

/// The single-flag route.
pub const SINGLE: &str = "/ofrep/v1/evaluate/flags/{key}";
/// The bulk route.
pub const BULK: &str = "/ofrep/v1/evaluate/flags";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// The OFREP request families, registered once per listener.
#[derive(Debug, Clone)]
pub struct Stats {
    requests: Family<StatusLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

fn histogram() -> Histogram {
    // 25 µs to ~0.8 s, as for gRPC calls.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

impl Stats {
    /// Registers the families in `metrics`.
    pub fn register(metrics: &Metrics) -> Stats {
        let requests = Family::<StatusLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        metrics.register(
            "cohortd_ofrep_requests",
            "OFREP HTTP requests answered, by route and status",
            requests.clone(),
        );
        metrics.register(
            "cohortd_ofrep_request_duration_seconds",
            "OFREP request latency from routing to response, by route",
            latency.clone(),
        );
        Stats { requests, latency }
    }

    /// Records one answered request.
    pub fn record(&self, route: &'static str, status: u16, started: Instant) {
        self.requests
            .get_or_create(&StatusLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(started.elapsed().as_secs_f64());
    }
}
