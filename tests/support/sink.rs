//! An [`ExposureSink`] that remembers every exposure it is handed, owned, so a
//! test can assert exactly what a transport exposed.

use std::sync::Mutex;

use cohortd::exposure::{Exposure, ExposureSink};

/// One recorded exposure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub experiment: String,
    pub variant: String,
    pub unit: String,
    /// The transport that exposed it (`Source::as_str`: `assign`, `flagd`, ...).
    pub source: &'static str,
    pub config_version: String,
}

/// Keeps every exposure it receives.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<Seen>>);

impl ExposureSink for RecordingSink {
    fn record(&self, e: &Exposure<'_>) {
        self.0.lock().unwrap().push(Seen {
            experiment: e.subject.key().to_string(),
            variant: e.subject.variant().to_string(),
            unit: e.unit.to_owned(),
            source: e.source.as_str(),
            config_version: e.config_version.to_owned(),
        });
    }
}

impl RecordingSink {
    /// Everything recorded since the last call.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
