//! A faithful copy of the kubelet's `AtomicWriter.Write`
//! (pkg/volume/util/atomic_writer.go), the way a ConfigMap volume is updated:
//!
//! 1. note the visible files the new payload no longer has;
//! 2. write the payload into a new directory `..<UTC timestamp>.<random>`;
//! 3. point a new symlink `..data_tmp` at it;
//! 4. rename `..data_tmp` over `..data` (the atomic switch);
//! 5. create the visible symlinks `NAME -> ..data/NAME` that do not exist yet;
//! 6. remove the visible symlinks of files no longer in the payload;
//! 7. remove the old timestamped directory.
//!
//! Between steps 4 and 6 a removed file's symlink dangles, exactly as on a node.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes payloads into one ConfigMap-style volume directory.
pub struct AtomicWriter {
    dir: PathBuf,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl AtomicWriter {
    /// A writer for the (existing) volume directory `dir`.
    pub fn new(dir: &Path) -> Self {
        AtomicWriter {
            dir: dir.to_owned(),
        }
    }

    /// Replaces the volume's contents with `payload` (file name, contents).
    pub fn write(&self, payload: &[(&str, &str)]) -> io::Result<()> {
        let data = self.dir.join("..data");
        // (1) What is visible now and will be gone.
        let old_ts = std::fs::read_link(&data).ok();
        let new_names: BTreeSet<&str> = payload.iter().map(|(n, _)| *n).collect();
        let mut to_remove = Vec::new();
        if let Some(old) = &old_ts {
            for e in std::fs::read_dir(self.dir.join(old))? {
                let name = e?.file_name().to_string_lossy().into_owned();
                if !new_names.contains(name.as_str()) {
                    to_remove.push(name);
                }
            }
        }
        // (2) The new timestamped directory (os.MkdirTemp(dir, "..2006_01_02_15_04_05.")).
        let ts_name = format!(
            "..{}.{}{:06}",
            jiff::Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S"),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let ts_dir = self.dir.join(&ts_name);
        std::fs::create_dir(&ts_dir)?;
        for (name, text) in payload {
            let p = ts_dir.join(name);
            std::fs::write(&p, text)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        }
        // (3) ..data_tmp -> the new directory (a relative link, as the kubelet makes).
        let tmp = self.dir.join("..data_tmp");
        symlink(&ts_name, &tmp)?;
        // (4) The atomic switch.
        std::fs::rename(&tmp, &data)?;
        // (5) Visible files are links through ..data; existing ones stay as they are.
        for name in &new_names {
            let visible = self.dir.join(name);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new("..data").join(name), &visible)?;
            }
        }
        // (6) Files no longer in the payload.
        for name in &to_remove {
            std::fs::remove_file(self.dir.join(name))?;
        }
        // (7) The old payload.
        if let Some(old) = old_ts {
            std::fs::remove_dir_all(self.dir.join(old))?;
        }
        Ok(())
    }
}
