//! Size limits on what a reload reads from disk.
//!
//! The config directory is written by people and by pipelines; a 500 MB file
//! dropped into it must not be read whole into a sidecar that shares its pod's
//! memory. Each file's size is checked from its metadata *before* it is opened
//! for reading, and the read itself stops one byte past the limit (a file can
//! grow between the check and the read), so a reload never holds more than
//! `max_total_bytes` of file contents. A breach rejects the reload with an error
//! naming the file, the size and the flag; the last good config keeps serving.

use std::io::Read;
use std::path::Path;

use super::ConfigError;

/// The configured read limits. Defaults suit a sidecar: far above any real
/// experiment config, far below a pod's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest single config file in bytes (`--max-config-file-bytes`).
    pub max_file_bytes: u64,
    /// Largest total of all config files in bytes (`--max-config-total-bytes`).
    pub max_total_bytes: u64,
    /// Most config files in the directory (`--max-config-files`).
    pub max_files: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_file_bytes: 4 << 20,
            max_total_bytes: 64 << 20,
            max_files: 50_000,
        }
    }
}

impl ReadLimits {
    /// The error for a directory with more than `max_files` config files.
    pub fn too_many_files(&self, dir: &Path, found: usize) -> ConfigError {
        ConfigError::file(
            dir,
            format!(
                "holds {found} config files; the limit is {} (--max-config-files)",
                self.max_files
            ),
        )
    }

    /// Reads `path` (already known to be a regular file of `len` bytes by its
    /// metadata) if it fits both in the per-file limit and in what is left of the
    /// total, `used` bytes having been read already.
    pub fn read(&self, path: &Path, len: u64, used: u64) -> Result<Vec<u8>, ConfigError> {
        let room = self.max_total_bytes.saturating_sub(used);
        let limit = self.max_file_bytes.min(room);
        let over = |size: String| {
            if limit == self.max_file_bytes {
                ConfigError::file(
                    path,
                    format!(
                        "is {size} bytes; the limit is {} bytes per file (--max-config-file-bytes); not read",
                        self.max_file_bytes
                    ),
                )
            } else {
                ConfigError::file(
                    path,
                    format!(
                        "is {size} bytes, which would take the config directory over its total limit of {} bytes (--max-config-total-bytes); not read",
                        self.max_total_bytes
                    ),
                )
            }
        };
        if len > limit {
            return Err(over(len.to_string()));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(over(format!("more than {limit}")));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_before_and_while_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, "0123456789").unwrap();
        let l = ReadLimits {
            max_file_bytes: 10,
            max_total_bytes: 15,
            max_files: 1,
        };
        assert_eq!(l.read(&p, 10, 0).unwrap().len(), 10);
        let e = l.read(&p, 10, 6).unwrap_err();
        assert!(e.message.contains("--max-config-total-bytes"), "{e}");
        // Metadata said 5 bytes but the file holds 10 (it grew): still capped.
        let small = ReadLimits {
            max_file_bytes: 6,
            ..l
        };
        let e = small.read(&p, 5, 0).unwrap_err();
        assert!(e.message.contains("more than 6"), "{e}");
        assert!(e.to_string().contains("a.json"), "{e}");
    }
}
