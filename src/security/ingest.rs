//! Ingest calls (LogExposures, Track) are the ones whose misuse corrupts
//! analysis: a caller that can send them can inflate exposure counts or trip the
//! SRM check. They can be switched off (`--ingest off`: PERMISSION_DENIED,
//! before the message is read), and each connection gets a token bucket of
//! records per second (`--ingest-records-per-second`, `--ingest-burst`):
//! a batch that does not fit is refused whole with RESOURCE_EXHAUSTED, so the
//! client can retry it later without duplicates.
//!
//! Handlers call [`admit`] with the record count once the message is decoded;
//! the bucket travels in the connection's [`ConnInfo`](super::conn::ConnInfo).

use std::sync::Mutex;
use std::time::Instant;

use super::gate::{Check, Gate, GateLayer};

/// The gRPC paths of the ingest methods.
pub const INGEST_METHODS: [&str; 2] = [
    "/cohortd.v1.Assignment/LogExposures",
    "/cohortd.v1.Assignment/Track",
];

/// Ingest settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestPolicy {
    /// Whether ingest calls are served at all.
    pub enabled: bool,
    /// Records per second per connection; `0` means unlimited.
    pub records_per_second: u32,
    /// Most records a connection may send at once after being idle.
    pub burst: u32,
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            enabled: true,
            records_per_second: 10_000,
            burst: 20_000,
        }
    }
}

/// One connection's token bucket.
#[derive(Debug)]
pub struct IngestBudget {
    policy: IngestPolicy,
    state: Mutex<(f64, Instant)>,
}

impl IngestBudget {
    /// A full bucket.
    pub fn new(policy: IngestPolicy) -> Self {
        IngestBudget {
            policy,
            state: Mutex::new((f64::from(policy.burst), Instant::now())),
        }
    }

    /// Takes `records` from the bucket, or refuses (taking nothing).
    pub fn take(&self, records: usize) -> Result<(), tonic::Status> {
        self.take_at(records, Instant::now())
    }

    fn take_at(&self, records: usize, now: Instant) -> Result<(), tonic::Status> {
        let p = self.policy;
        if p.records_per_second == 0 || records == 0 {
            return Ok(());
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * f64::from(p.records_per_second)).min(f64::from(p.burst));
        s.1 = now;
        let want = records as f64;
        if want <= s.0 {
            s.0 -= want;
            return Ok(());
        }
        Err(tonic::Status::resource_exhausted(format!(
            "ingest limit: {records} records exceed this connection's allowance \
             ({} records/s, burst {}); retry later (--ingest-records-per-second, --ingest-burst)",
            p.records_per_second, p.burst
        )))
    }
}

/// Charges `records` to the connection the request came on. Requests that did
/// not come through cohortd's listeners (in-process tests) are not limited.
pub fn admit(extensions: &http::Extensions, records: usize) -> Result<(), tonic::Status> {
    match extensions.get::<super::conn::ConnInfo>() {
        Some(info) => info.ingest.take(records),
        None => Ok(()),
    }
}

/// Refuses ingest methods when ingest is off.
pub type IngestGateLayer = GateLayer<IngestCheck>;

/// A service behind [`IngestGateLayer`].
pub type IngestGate<S> = Gate<S, IngestCheck>;

impl IngestGateLayer {
    /// A gate for `policy`.
    pub fn new(policy: IngestPolicy) -> Self {
        GateLayer(IngestCheck {
            enabled: policy.enabled,
        })
    }
}

/// The check of [`IngestGateLayer`]: ingest methods pass only when enabled.
#[derive(Debug, Clone, Copy)]
pub struct IngestCheck {
    enabled: bool,
}

impl Check for IngestCheck {
    fn refuse<B, RB: Default>(&self, req: &http::Request<B>) -> Option<http::Response<RB>> {
        if self.enabled || !INGEST_METHODS.contains(&req.uri().path()) {
            return None;
        }
        let status = tonic::Status::permission_denied(
            "ingest calls are switched off on this server (--ingest off)",
        );
        Some(status.into_http())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_refills_at_the_rate_and_refuses_whole_batches() {
        let b = IngestBudget::new(IngestPolicy {
            enabled: true,
            records_per_second: 100,
            burst: 200,
        });
        let t0 = Instant::now();
        assert!(b.take_at(150, t0).is_ok());
        let e = b.take_at(100, t0).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        // The refused batch took nothing: 50 are left.
        assert!(b.take_at(50, t0).is_ok());
        assert!(b.take_at(1, t0).is_err());
        // Half a second refills 50, never beyond the burst.
        assert!(b.take_at(50, t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take_at(201, t0 + Duration::from_secs(100)).is_err());
        assert!(b.take_at(200, t0 + Duration::from_secs(100)).is_ok());
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let b = IngestBudget::new(IngestPolicy {
            enabled: true,
            records_per_second: 0,
            burst: 0,
        });
        assert!(b.take(1_000_000).is_ok());
    }
}
