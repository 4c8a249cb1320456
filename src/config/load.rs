//! Reading a config directory (or one file): which entries are config files,
//! a consistent read across a kubelet `..data` swap, and the content
//! fingerprint; [`super::parse`] turns each file into a [`ConfigDocument`].
//!
//! A directory is read the way Kubernetes lays out a ConfigMap volume: every
//! `*.json`, `*.yaml` and `*.yml` entry at the top level, following symlinks, and
//! skipping names that start with `.` (the kubelet's `..data` link and its
//! timestamped `..2024_...` directories, editor swap files).

use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrors};
use super::parse::{format_of, parse_file, SourceFile};
use super::read_limits::ReadLimits;

/// The raw bytes of one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// Path as found (inside the config directory).
    pub path: PathBuf,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// How many times [`read_sources`] re-reads a directory whose `..data` link moved
/// while it was reading. Each kubelet update moves it once, so a retry or two
/// suffices; the bound keeps a pathological writer from stalling a reload.
const CONSISTENT_READ_ATTEMPTS: usize = 5;

/// Lists and reads the config files under `path` (a directory or a single file),
/// sorted by file name. Fails only if `path` itself cannot be read; an unreadable
/// file inside is an error for that file.
///
/// In a ConfigMap volume each visible file is a symlink through `..data`, which the
/// kubelet swaps between two of our reads. A directory whose `..data` link changed
/// during the read is read again, so the files returned always come from one
/// ConfigMap version: never half of one update and half of the next.
pub fn read_sources(path: &Path) -> Result<Vec<RawFile>, ConfigErrors> {
    read_sources_with(path, &ReadLimits::default())
}

/// [`read_sources`] with explicit size limits (see [`ReadLimits`]).
pub fn read_sources_with(path: &Path, limits: &ReadLimits) -> Result<Vec<RawFile>, ConfigErrors> {
    let data_link = path.join("..data");
    for _ in 0..CONSISTENT_READ_ATTEMPTS {
        let before = std::fs::read_link(&data_link).ok();
        let result = read_sources_once(path, limits);
        if before == std::fs::read_link(&data_link).ok() {
            return result;
        }
    }
    // Still moving: refuse rather than return a mix of versions. The change
    // that moved the link triggers another reload.
    Err(ConfigErrors(vec![ConfigError::file(
        &data_link,
        format!("changed during each of {CONSISTENT_READ_ATTEMPTS} reads; not loading a mix of versions"),
    )]))
}

fn read_sources_once(path: &Path, limits: &ReadLimits) -> Result<Vec<RawFile>, ConfigErrors> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigErrors(vec![ConfigError::file(path, format!("cannot read: {e}"))]))?;
    if meta.is_file() {
        if format_of(path).is_none() {
            return Err(ConfigErrors(vec![ConfigError::file(
                path,
                "not a config file: cohortd reads *.json, *.yaml and *.yml files",
            )]));
        }
        let bytes = limits
            .read(path, meta.len(), 0)
            .map_err(|e| ConfigErrors(vec![e]))?;
        return Ok(vec![RawFile {
            path: path.to_owned(),
            bytes,
        }]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::file(
            path,
            format!("cannot list directory: {e}"),
        )])
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| format_of(p).is_some())
        .collect();
    if paths.len() > limits.max_files {
        return Err(ConfigErrors(vec![limits.too_many_files(path, paths.len())]));
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    let mut used = 0u64;
    for p in paths {
        // A config-named entry we cannot read as a regular file (a dangling
        // symlink, a directory, a FIFO) is an error, not an absence: skipping it
        // would silently remove its experiments. Only a deleted file removes them.
        let len = match std::fs::metadata(&p) {
            Err(e) => {
                errors.push(ConfigError::file(&p, format!("cannot read: {e}")));
                continue;
            }
            Ok(m) if !m.is_file() => {
                errors.push(ConfigError::file(&p, "cannot read: not a regular file"));
                continue;
            }
            Ok(m) => m.len(),
        };
        match limits.read(&p, len, used) {
            Ok(bytes) => {
                used += bytes.len() as u64;
                files.push(RawFile { path: p, bytes })
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// A content fingerprint of the raw files (names and bytes). The reload fallback
/// compares it to notice changes that no filesystem event reported.
pub fn fingerprint(files: &[RawFile]) -> u64 {
    let mut h = seahash::SeaHasher::new();
    for f in files {
        use std::hash::Hasher;
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.write(&(name.len() as u64).to_le_bytes());
        h.write(name.as_bytes());
        h.write(&(f.bytes.len() as u64).to_le_bytes());
        h.write(&f.bytes);
    }
    std::hash::Hasher::finish(&h)
}

/// Reads and parses every config file under `path`, collecting every error.
pub fn load_path(path: &Path) -> Result<Vec<SourceFile>, ConfigErrors> {
    parse_sources(&read_sources(path)?)
}

/// Parses raw files, collecting every error across all of them.
pub fn parse_sources(files: &[RawFile]) -> Result<Vec<SourceFile>, ConfigErrors> {
    let mut out = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for f in files {
        match parse_file(&f.path, &f.bytes) {
            Ok(doc) => out.push(SourceFile {
                path: f.path.clone(),
                doc,
            }),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_named_entries_that_cannot_be_read_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        std::fs::create_dir(dir.path().join("..2026_11_21_08_00_00.1")).unwrap();
        assert_eq!(read_sources(dir.path()).unwrap().len(), 1);

        std::os::unix::fs::symlink("missing.json", dir.path().join("b.json")).unwrap();
        let errs = read_sources(dir.path()).unwrap_err();
        assert_eq!(errs.0.len(), 1);
        assert!(errs.0[0].file.ends_with("b.json"), "{errs}");
        std::fs::remove_file(dir.path().join("b.json")).unwrap();

        std::fs::create_dir(dir.path().join("c.yaml")).unwrap();
        let errs = read_sources(dir.path()).unwrap_err();
        assert!(errs.0[0].file.ends_with("c.yaml"), "{errs}");
        assert!(errs.0[0].message.contains("not a regular file"), "{errs}");
    }
}
