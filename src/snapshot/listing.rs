//! What a snapshot holds, as a person or a script wants to see it: `cohortd
//! list` prints it and the admin port serves it at `/experiments`.

use serde::Serialize;

use super::Snapshot;

/// Every experiment of a snapshot, with the config version.
#[derive(Debug, Clone, Serialize)]
pub struct Listing<'s> {
    /// The config version.
    pub version: &'s str,
    /// Experiments sorted by key, drafts included.
    pub experiments: Vec<Listed<'s>>,
}

/// One experiment's summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed<'s> {
    /// Experiment key.
    pub key: &'s str,
    /// Lifecycle state (`running`, `draft`, ...).
    pub status: &'static str,
    /// Whether it is served (drafts are not).
    pub served: bool,
    /// The traffic allocation in force now (a ramp's current step).
    pub traffic_allocation: f64,
    /// Whether a ramp schedule changes the traffic over time.
    pub ramp: bool,
    /// Variant keys in config order.
    pub variants: Vec<&'s str>,
    /// The declared winner, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<&'s str>,
    /// Acknowledged-reshuffle counter.
    pub epoch: u32,
    /// The file it was loaded from.
    pub source: String,
}

impl Snapshot {
    /// The listing of this snapshot at `now` (Unix seconds, for ramps).
    pub fn listing(&self, now: i64) -> Listing<'_> {
        Listing {
            version: self.version(),
            experiments: self
                .experiments()
                .iter()
                .map(|e| Listed {
                    key: &e.key,
                    status: e.status.as_str(),
                    served: e.is_served(),
                    traffic_allocation: e.traffic_allocation_at(now),
                    ramp: !e.schedule.is_empty(),
                    variants: e.variants.iter().map(|v| &*v.key).collect(),
                    winner: e.winner.and_then(|w| e.variants.get(w)).map(|v| &*v.key),
                    epoch: e.epoch,
                    source: e.source.display().to_string(),
                })
                .collect(),
        }
    }
}
