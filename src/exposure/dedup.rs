//! The in-memory, memory-bounded dedup window: one unit seeing the same variant
//! of the same config version is exported once per window.
//!
//! Windows are aligned to wall-clock time (`floor(unix_seconds / window)`), the
//! same index that goes into the exposure id, so every sidecar cuts windows at
//! the same instants and a duplicate that slips through (after a restart, on a
//! second pod, or after a capacity rotation) carries the same id and is dropped
//! downstream.
//!
//! Memory is bounded by a hard cap: the set is split into shards (to keep lock
//! contention low), each holding two generations of 64-bit keys. When the current
//! generation of a shard reaches its share of the cap, it becomes the previous one
//! and the old previous one is discarded; lookups consult both. So at most
//! `2 * capacity` keys are held, and the most recent `capacity / shards` keys of
//! each shard are always remembered. A new window clears both generations.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// Keys are already uniform 64-bit hashes: hash them by identity.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeySet = HashSet<u64, BuildHasherDefault<Identity>>;

#[derive(Default)]
struct Shard {
    window: u64,
    current: KeySet,
    previous: KeySet,
}

/// The dedup key of an exposure: a 64-bit hash of unit, experiment, variant and
/// config version (length-prefixed, so field boundaries cannot blur).
pub fn key(unit: &str, experiment: &str, variant: &str, config_version: &str) -> u64 {
    let mut h = seahash::SeaHasher::new();
    for field in [unit, experiment, variant, config_version] {
        h.write_u64(field.len() as u64);
        h.write(field.as_bytes());
    }
    h.finish()
}

/// The dedup key of an outcome event: a 64-bit hash of the caller's event id,
/// in a domain of its own (outcomes have their own [`Dedup`] set, so they never
/// evict exposure keys).
pub fn outcome_key(event_id: &str) -> u64 {
    let mut h = seahash::SeaHasher::new();
    h.write(b"cohortd.outcome");
    h.write_u64(event_id.len() as u64);
    h.write(event_id.as_bytes());
    h.finish()
}

/// What [`Dedup::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First time in this window: export it.
    New,
    /// Already exported in this window: skip it.
    Duplicate,
}

/// A fixed-capacity, windowed set of recently exported exposure keys.
pub struct Dedup {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl Dedup {
    /// A dedup set remembering up to `capacity` keys per generation (at least one
    /// per shard).
    pub fn new(capacity: usize) -> Dedup {
        Dedup {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Records `key` in window `window` and says whether it was new.
    pub fn check(&self, key: u64, window: u64) -> Verdict {
        // The low bits pick the shard; the set hashes by the full key.
        let shard = &self.shards[(key as usize) % SHARDS];
        // A poisoned lock only means another thread panicked mid-insert; the set
        // is still a valid set, so keep using it.
        let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
        if s.window != window {
            s.window = window;
            s.current.clear();
            s.previous.clear();
        }
        if s.current.contains(&key) || s.previous.contains(&key) {
            return Verdict::Duplicate;
        }
        if s.current.len() >= self.per_shard {
            let full = std::mem::take(&mut s.current);
            s.previous = full;
        }
        s.current.insert(key);
        Verdict::New
    }

    /// Keys currently held (both generations), for tests and debugging.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|p| p.into_inner());
                s.current.len() + s.previous.len()
            })
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_within_window_new_in_next() {
        let d = Dedup::new(1000);
        let k = key("u1", "exp", "b", "v1");
        assert_eq!(d.check(k, 5), Verdict::New);
        assert_eq!(d.check(k, 5), Verdict::Duplicate);
        assert_eq!(d.check(k, 6), Verdict::New);
        assert_eq!(d.check(k, 6), Verdict::Duplicate);
    }

    #[test]
    fn key_distinguishes_every_field() {
        let base = key("u1", "exp", "b", "v1");
        assert_ne!(base, key("u2", "exp", "b", "v1"));
        assert_ne!(base, key("u1", "exp2", "b", "v1"));
        assert_ne!(base, key("u1", "exp", "a", "v1"));
        assert_ne!(base, key("u1", "exp", "b", "v2"));
        assert_ne!(key("ab", "c", "x", "v"), key("a", "bc", "x", "v"));
    }

    #[test]
    fn memory_is_capped_and_recent_keys_remembered() {
        let cap = 160; // 10 per shard
        let d = Dedup::new(cap);
        for i in 0..100_000u32 {
            d.check(key(&i.to_string(), "e", "v", "1"), 0);
        }
        assert!(d.len() <= 2 * cap, "held {} keys", d.len());
        // The most recent key is always remembered.
        let last = key("99999", "e", "v", "1");
        assert_eq!(d.check(last, 0), Verdict::Duplicate);
        // A long-evicted key is exported again (and downstream dedups it by id).
        assert_eq!(d.check(key("0", "e", "v", "1"), 0), Verdict::New);
    }
}
