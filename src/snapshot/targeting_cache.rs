//! Compiled targeting shared by the experiments of one compile that target
//! alike.
//!
//! Many experiments of a config carry the same targeting (`region:US`,
//! `internal:true`, ...) and the same unit attribute. Compiling it is the same
//! work each time, and it was a third of compiling an experiment, most of it
//! small allocations (five strings per condition; callgrind,
//! `benches/tools/reload_time.rs`). A condition's compiled form depends only on
//! the targeting as written and the document's segments (one set for the whole
//! compile), and the attribute list evaluation gathers ([`Reads`]) only on that
//! and the unit attribute; the memo slots are set later, for the whole snapshot
//! (`super::compile::index_shared_conds`). So an experiment whose targeting and
//! unit attribute equal an earlier one's in the same compile takes that one's
//! conditions (the same `Arc`, a reference count) and a copy of its `Reads`:
//! the result is equal, field for field, to compiling it again.
//!
//! Only targeting that compiled without errors is kept, so errors are found
//! and reported exactly as before. The cache is local to one pass over the
//! experiments (each compile thread has its own) and holds at most
//! [`ENTRIES`] targetings, replaced in turn: a lookup compares with each, and a
//! config whose targetings all differ pays those comparisons and nothing else.

use crate::config::Targeting;
use crate::engine::reads::Reads;

use super::targeting::CompiledTargeting;

/// How many distinct targetings one pass keeps.
const ENTRIES: usize = 16;

/// Targetings compiled earlier in this pass, with what they compiled to.
pub(super) struct TargetingCache<'a> {
    entries: Vec<Entry<'a>>,
    /// At most this many entries: [`ENTRIES`], or 0 when sharing is off.
    limit: usize,
    /// The entry the next new targeting replaces once full.
    next: usize,
}

struct Entry<'a> {
    targeting: &'a Targeting,
    hash_key: &'a str,
    compiled: CompiledTargeting,
    reads: Reads,
}

impl<'a> TargetingCache<'a> {
    /// An empty cache; with `share` false it keeps nothing, so every
    /// experiment's targeting compiles on its own.
    pub(super) fn new(share: bool) -> Self {
        TargetingCache {
            entries: Vec::new(),
            limit: if share { ENTRIES } else { 0 },
            next: 0,
        }
    }

    /// What `targeting` with unit attribute `hash_key` compiled to earlier in
    /// this pass, if it did.
    pub(super) fn get(
        &self,
        targeting: &Targeting,
        hash_key: &str,
    ) -> Option<(CompiledTargeting, Reads)> {
        self.entries
            .iter()
            .find(|e| e.hash_key == hash_key && *e.targeting == *targeting)
            .map(|e| (e.compiled.clone(), e.reads.clone()))
    }

    /// Keeps what `targeting` with unit attribute `hash_key` compiled to
    /// (without errors).
    pub(super) fn put(
        &mut self,
        targeting: &'a Targeting,
        hash_key: &'a str,
        compiled: &CompiledTargeting,
        reads: &Reads,
    ) {
        if self.limit == 0 {
            return;
        }
        let entry = Entry {
            targeting,
            hash_key,
            compiled: compiled.clone(),
            reads: reads.clone(),
        };
        if self.entries.len() < self.limit {
            self.entries.push(entry);
        } else {
            self.entries[self.next] = entry;
            self.next = (self.next + 1) % self.limit;
        }
    }
}
