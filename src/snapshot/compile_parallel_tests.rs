//! A compile on two threads gives what a compile on one gives: the same
//! snapshot (every compiled field, by its `Debug` form) and the same errors in
//! the same order, for valid and invalid file sets, from scratch and reusing a
//! served snapshot.

use std::path::PathBuf;

use crate::config::{ConfigErrors, RawFile};
use crate::snapshot::compile::PARALLEL_EXPERIMENTS;
use crate::Snapshot;

/// Experiment `i` of a file; `bad` makes it invalid in a way found by the
/// per-experiment compile (the step that runs on two threads).
fn exp(i: usize, tag: &str, bad: Option<usize>) -> String {
    let (traffic, variants, segment) = match bad {
        Some(0) => ("1.5", r#"[{"key":"a"},{"key":"b"}]"#, "shared"),
        Some(1) => ("0.5", r#"[{"key":"a"},{"key":"a"}]"#, "shared"),
        Some(_) => ("0.5", r#"[{"key":"a"},{"key":"b"}]"#, "missing"),
        None => ("0.5", r#"[{"key":"a","weight":2},{"key":"b"}]"#, "shared"),
    };
    // Layers for the first 350 only, each in a slot of its own.
    let layer = match i < 350 {
        true => format!(
            r#","layer":{{"key":"L{}","range":[{},{}]}}"#,
            i % 7,
            (i / 7) as f64 / 50.0,
            (i / 7 + 1) as f64 / 50.0
        ),
        false => String::new(),
    };
    format!(
        r#"{{"experimentId":"e{i:05}","name":"{tag}","status":"running","trafficAllocation":{traffic},
        "variants":{variants},"assignment":{{"salt":"s{i}"}},
        "targeting":{{"include":["region:US","plan:{p}"],"segments":["{segment}"]}}{layer}}}"#,
        p = i % 3,
    )
}

/// `files` files of `per` experiments (file `f` holds keys `f`, `f + files`,
/// ...); the first also declares a segment and
/// the layers. `bad(i)` chooses the invalid experiments.
fn files(
    files: usize,
    per: usize,
    tag: &str,
    bad: impl Fn(usize) -> Option<usize>,
) -> Vec<RawFile> {
    (0..files)
        .map(|f| {
            // Keys interleave over the files, so each file's experiments are
            // compiled on both threads and its errors come from both halves.
            let items: Vec<String> = (0..per)
                .map(|j| j * files + f)
                .map(|i| exp(i, tag, bad(i)))
                .collect();
            let decls = if f == 0 {
                r#""segments":{"shared":{"include":["tier:gold"]}},"layers":[{"key":"L0"},{"key":"L1"},{"key":"L2"},{"key":"L3"},{"key":"L4"},{"key":"L5"},{"key":"L6"}],"#
            } else {
                ""
            };
            RawFile {
                path: PathBuf::from(format!("/cfg/f{f:03}.json")),
                bytes: format!(r#"{{{decls}"experiments":[{}]}}"#, items.join(",")).into_bytes(),
            }
        })
        .collect()
}

/// Both paths' results, each as text that shows every field.
fn both(raw: &[RawFile], previous: Option<&Snapshot>) -> (String, String) {
    let show = |r: Result<Snapshot, ConfigErrors>| match r {
        Ok(s) => format!("{s:?}"),
        Err(e) => format!("{:?}", e.0),
    };
    let two = Snapshot::from_raw_split(raw, previous, 1);
    let one = Snapshot::from_raw_split(raw, previous, usize::MAX);
    (show(two), show(one))
}

#[test]
fn a_valid_config_compiles_the_same_on_two_threads() {
    let raw = files(24, 50, "a", |_| None);
    let (two, one) = both(&raw, None);
    assert!(
        two.starts_with("Snapshot"),
        "valid: {}",
        &two[..200.min(two.len())]
    );
    assert_eq!(two, one);
    // The default path takes two threads at this size.
    const { assert!(24 * 50 >= PARALLEL_EXPERIMENTS) };
    let default = Snapshot::from_raw(&raw).unwrap();
    assert_eq!(format!("{default:?}"), one);
}

#[test]
fn errors_come_in_the_same_order_on_two_threads() {
    // Invalid experiments in both halves, a duplicate key across files (a
    // cross-file error) and a file that does not parse at all.
    let mut raw = files(24, 50, "a", |i| (i % 13 == 5).then_some(i % 3));
    let dup = raw[3].bytes.clone();
    raw.push(RawFile {
        path: PathBuf::from("/cfg/g-dup.json"),
        bytes: dup,
    });
    raw.push(RawFile {
        path: PathBuf::from("/cfg/h-broken.json"),
        bytes: b"{ not json".to_vec(),
    });
    let (two, one) = both(&raw, None);
    assert_eq!(two, one);
    let Err(errors) = Snapshot::from_raw_split(&raw, None, 1) else {
        panic!("the config is invalid")
    };
    let found = |m: &str| errors.0.iter().filter(|e| e.message.contains(m)).count();
    assert!(found("must be in [0, 1]") >= 2, "{errors:?}");
    assert!(found("duplicate variant key") >= 2);
    assert!(found("unknown segment") >= 2);
    assert_eq!(found("also defined in"), 50);
    let files: Vec<_> = errors.0.iter().map(|e| e.file.clone()).collect();
    assert!(files.windows(2).all(|w| w[0] <= w[1]), "file by file");
}

#[test]
fn a_reload_reusing_a_served_snapshot_compiles_the_same_on_two_threads() {
    let served = Snapshot::from_raw(&files(24, 50, "a", |_| None)).unwrap();
    // Every file changed (names only).
    let every = files(24, 50, "b", |_| None);
    let (two, one) = both(&every, Some(&served));
    assert_eq!(two, one);
    // Two files of 24 changed: most experiments are copied from `served`.
    let mut some = files(24, 50, "a", |_| None);
    some[5] = every[5].clone();
    some[17] = every[17].clone();
    let (two, one) = both(&some, Some(&served));
    assert_eq!(two, one);
    let snap = Snapshot::from_raw_split(&some, Some(&served), 1).unwrap();
    assert_eq!(snap.reused_experiments(), 22 * 50);
    // And an invalid changed file is reported the same from both paths.
    some[9] = files(24, 50, "c", |i| (i % 11 == 0).then_some(0))[9].clone();
    let (two, one) = both(&some, Some(&served));
    assert!(
        two.contains("trafficAllocation"),
        "{}",
        &two[..300.min(two.len())]
    );
    assert_eq!(two, one);
}
