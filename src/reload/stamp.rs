//! A cheap stamp of the config directory: names, sizes, modification times and
//! inodes, from metadata only.
//!
//! The periodic poll and the settle check compare stamps instead of reading every
//! file: a directory holding a large file is not re-read every few seconds, and
//! the settle interval can be checked often. A change of content always changes
//! the stamp (a write updates the modification time, in nanoseconds on the
//! filesystems we run on; an atomic rename changes the inode); a stamp change with
//! identical content only costs one reload that finds nothing new.

use std::hash::Hasher;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The stamp of `path` (a directory, or a single file).
pub fn stamp(path: &Path) -> u64 {
    let mut h = seahash::SeaHasher::new();
    match std::fs::metadata(path) {
        Err(e) => h.write(format!("missing\0{e}").as_bytes()),
        Ok(m) if m.is_file() => add(&mut h, b"", &m),
        Ok(m) => {
            add(&mut h, b".", &m);
            if let Ok(target) = std::fs::read_link(path.join("..data")) {
                h.write(target.as_os_str().as_encoded_bytes());
            }
            match std::fs::read_dir(path) {
                Err(e) => h.write(format!("unlistable\0{e}").as_bytes()),
                Ok(entries) => {
                    let mut names: Vec<_> = entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name())
                        .filter(|n| !n.as_encoded_bytes().starts_with(b"."))
                        .collect();
                    names.sort();
                    for n in names {
                        // Follows symlinks: a ConfigMap file's target changes with `..data`.
                        match std::fs::metadata(path.join(&n)) {
                            Ok(m) => add(&mut h, n.as_encoded_bytes(), &m),
                            Err(_) => h.write(n.as_encoded_bytes()),
                        }
                    }
                }
            }
        }
    }
    h.finish()
}

fn add(h: &mut seahash::SeaHasher, name: &[u8], m: &std::fs::Metadata) {
    h.write(&(name.len() as u64).to_le_bytes());
    h.write(name);
    for v in [
        m.len(),
        m.ino(),
        m.dev(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
    ] {
        h.write(&v.to_le_bytes());
    }
}

/// Whether `dir` is a ConfigMap volume: its files are published by the kubelet's
/// atomic `..data` symlink swap, so what we read is never a partial write.
pub fn is_atomic_volume(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join("..data")).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_show_in_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let s0 = stamp(dir.path());
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        let s1 = stamp(dir.path());
        assert_ne!(s0, s1);
        assert_eq!(s1, stamp(dir.path()));
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        assert_ne!(s1, stamp(dir.path()), "same size, new content");
        assert!(!is_atomic_volume(dir.path()));
    }
}
