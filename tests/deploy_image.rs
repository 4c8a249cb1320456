//! The container image's runtime (gcr.io/distroless/cc-debian12, see
//! deploy/Dockerfile) can run the binary cargo builds: it links only to libraries
//! that image ships, and asks for no newer glibc than Debian 12's 2.36.
//!
//! The image itself cannot be built on the CI machines (no Docker engine), so this
//! checks the binary instead. The test binary is the debug build; the release
//! build in the Dockerfile has the same crate graph, features and target, hence
//! the same dynamic dependencies. Uses `readelf` (binutils, installed with gcc).

#![cfg(target_os = "linux")]

use std::process::Command;

/// Libraries in distroless/cc-debian12: libc6, libgcc-s1, libstdc++6, libgomp1.
const DISTROLESS_CC_LIBS: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libgomp.so.1",
];

/// glibc of Debian 12 (bookworm), the release distroless/cc-debian12 is built from.
const DEBIAN12_GLIBC: (u32, u32) = (2, 36);

fn readelf(args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_cohortd");
    let out = Command::new("readelf")
        .args(args)
        .arg(bin)
        .output()
        .expect("readelf (binutils) must be installed to check the image's linkage");
    assert!(
        out.status.success(),
        "readelf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("readelf prints UTF-8")
}

/// Names inside `[...]` on lines containing `marker`.
fn bracketed(text: &str, marker: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            let start = l.find('[')? + 1;
            let end = l[start..].find(']')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

#[test]
fn links_only_to_libraries_distroless_cc_ships() {
    let needed = bracketed(&readelf(&["-d", "--wide"]), "(NEEDED)");
    assert!(
        needed.iter().any(|l| l == "libc.so.6"),
        "expected a glibc-linked binary, NEEDED = {needed:?}"
    );
    let foreign: Vec<&String> = needed
        .iter()
        .filter(|l| !DISTROLESS_CC_LIBS.contains(&l.as_str()) && !l.starts_with("ld-linux"))
        .collect();
    assert!(
        foreign.is_empty(),
        "the binary needs {foreign:?}, which gcr.io/distroless/cc-debian12 does not ship"
    );
}

#[test]
fn interpreter_is_the_standard_glibc_loader() {
    // The line reads `[Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]`.
    let interp: Vec<String> = bracketed(&readelf(&["-l", "--wide"]), "program interpreter")
        .iter()
        .filter_map(|s| s.rsplit_once(": ").map(|(_, p)| p.to_owned()))
        .collect();
    assert_eq!(interp.len(), 1, "one PT_INTERP expected, got {interp:?}");
    assert!(
        interp[0].starts_with("/lib64/ld-linux") || interp[0].starts_with("/lib/ld-linux"),
        "unexpected interpreter {}",
        interp[0]
    );
}

#[test]
fn needs_no_glibc_newer_than_debian_12() {
    let versions = readelf(&["-V", "--wide"]);
    let mut newest = (0, 0);
    for word in versions.split_whitespace() {
        let Some(v) = word.strip_prefix("GLIBC_") else {
            continue;
        };
        let mut parts = v.split('.').map(|p| p.parse::<u32>());
        if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
            newest = newest.max((major, minor));
        }
    }
    assert!(newest >= (2, 2), "no GLIBC_ symbol versions found");
    assert!(
        newest <= DEBIAN12_GLIBC,
        "the binary needs GLIBC_{}.{}, newer than Debian 12's {}.{}",
        newest.0,
        newest.1,
        DEBIAN12_GLIBC.0,
        DEBIAN12_GLIBC.1
    );
}
