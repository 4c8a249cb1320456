//! Per-reload summaries of per-experiment messages (cohort-guard warnings).
//!
//! A reload can touch every experiment: removing 20,000 running experiments gives
//! 20,000 cohort-guard warnings. One log line each would flood the log pipeline,
//! so a reload logs one line per kind of message (a count and the first few
//! experiment keys) and keeps the list, capped, in the store for `/readyz`.

/// Experiment keys named in the log line.
pub const LOGGED_KEYS: usize = 5;
/// Entries kept for `/readyz`.
pub const KEPT: usize = 200;

/// The messages of one kind from one reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// How many there were.
    pub total: usize,
    /// The first [`KEPT`], as `key: detail`.
    pub items: Vec<String>,
    keys: Vec<String>,
}

impl Summary {
    /// Records one message about experiment `key`.
    pub fn push(&mut self, key: &str, detail: impl FnOnce() -> String) {
        self.total += 1;
        if self.keys.len() < LOGGED_KEYS {
            self.keys.push(key.to_owned());
        }
        if self.items.len() < KEPT {
            self.items.push(format!("{key}: {}", detail()));
        }
    }

    /// The first few keys, comma-separated, with `…` when there are more.
    pub fn first_keys(&self) -> String {
        let mut s = self.keys.join(", ");
        if self.total > self.keys.len() {
            s.push_str(", …");
        }
        s
    }

    /// The first few entries in full (`key: detail`), separated by ` | `.
    pub fn first_items(&self) -> String {
        let n = self.items.len().min(LOGGED_KEYS);
        self.items[..n].join(" | ")
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_counts_and_a_bounded_list() {
        let mut s = Summary::default();
        for i in 0..1000 {
            s.push(&format!("e{i}"), || "removed".into());
        }
        assert_eq!(s.total, 1000);
        assert_eq!(s.items.len(), KEPT);
        assert_eq!(s.first_keys(), "e0, e1, e2, e3, e4, …");
    }
}
