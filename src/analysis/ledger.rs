//! The look ledger: a small JSON file that remembers every look taken at each
//! experiment, so the look number (and with it the alpha left to spend) cannot
//! be forgotten or reset by running the analysis from a fresh shell.
//!
//! It is rewritten atomically (temporary file, then rename) after each
//! analysis. Keep it next to the experiment's config in version control, or on
//! the volume the scheduled analysis job mounts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest ledger file read (a look is ~100 bytes; this is far beyond any plan).
pub const MAX_BYTES: u64 = 16 << 20;

/// One look at one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookEntry {
    /// 1-based look number.
    pub look: u32,
    /// When it was taken (RFC 3339).
    pub at: String,
    /// Units analysed at that look.
    pub units: u64,
    /// Whether it was beyond `maxPeeks` and forced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    experiments: BTreeMap<String, Vec<LookEntry>>,
}

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Unreadable or unwritable.
    #[error("look ledger {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a ledger.
    #[error("look ledger {}: not a cohortd look ledger ({reason}); fix or move it, never delete it to reset the look count", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The ledger, loaded.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
}

impl Ledger {
    /// Opens `path`; a missing file is an empty ledger.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let io = |source| LedgerError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(io(e)),
            Ok(m) if m.len() > MAX_BYTES => {
                return Err(LedgerError::Corrupt {
                    path: path.to_owned(),
                    reason: format!("larger than {MAX_BYTES} bytes"),
                })
            }
            Ok(_) => {
                let text = std::fs::read(path).map_err(io)?;
                serde_json::from_slice(&text).map_err(|e| LedgerError::Corrupt {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?
            }
        };
        Ok(Ledger {
            path: path.to_owned(),
            file,
        })
    }

    /// The number the next look at `experiment` gets.
    pub fn next_look(&self, experiment: &str) -> u32 {
        self.file
            .experiments
            .get(experiment)
            .map_or(0, |l| l.len() as u32)
            + 1
    }

    /// The looks taken so far.
    pub fn looks(&self, experiment: &str) -> &[LookEntry] {
        self.file
            .experiments
            .get(experiment)
            .map_or(&[], Vec::as_slice)
    }

    /// Records a look (in memory; [`Ledger::save`] writes it).
    pub fn record(&mut self, experiment: &str, units: u64, forced: bool) {
        let look = self.next_look(experiment);
        self.file
            .experiments
            .entry(experiment.to_owned())
            .or_default()
            .push(LookEntry {
                look,
                at: jiff::Timestamp::now().to_string(),
                units,
                forced,
            });
    }

    /// Writes the ledger atomically.
    pub fn save(&self) -> Result<(), LedgerError> {
        let io = |source| LedgerError::Io {
            path: self.path.clone(),
            source,
        };
        let mut text = serde_json::to_vec_pretty(&self.file).map_err(|e| io(e.into()))?;
        text.push(b'\n');
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, &text).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_are_numbered_across_opens_and_a_corrupt_ledger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("looks.json");
        let mut l = Ledger::open(&path).unwrap();
        assert_eq!(l.next_look("x"), 1);
        l.record("x", 10, false);
        l.save().unwrap();
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.next_look("x"), 2);
        assert_eq!(l.next_look("y"), 1);
        std::fs::write(&path, "{\"experiments\": [").unwrap();
        let e = Ledger::open(&path).unwrap_err().to_string();
        assert!(e.contains("never delete it"), "{e}");
    }
}
