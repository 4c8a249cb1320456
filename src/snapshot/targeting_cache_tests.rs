//! Sharing one compiled targeting between experiments that target alike
//! (`super::targeting_cache`) gives what compiling each experiment's targeting
//! on its own gives: the same snapshot (every field, memo slots and gathered
//! attributes included, by its `Debug` form) and the same errors, in order.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{ConfigErrors, RawFile};
use crate::Snapshot;

/// Experiment `i`: targetings repeat within a file of 100 (18 of them, more
/// than the cache holds) and differ from file to file, with different unit
/// attributes, statuses, segments and rules; `bad` gives some experiments an
/// unknown segment.
fn exp(i: usize, tag: &str, bad: bool) -> String {
    let hash_key = match i % 4 {
        0 => r#","hashKey":"region""#,
        1 => r#","hashKey":"plan""#,
        _ => "",
    };
    let status = if i % 5 == 0 { "paused" } else { "running" };
    let segments = match (i % 6, bad) {
        (_, true) if i % 7 == 3 => r#","segments":["missing"]"#,
        (0, _) => r#","segments":["gold"]"#,
        _ => "",
    };
    format!(
        r#"{{"experimentId":"e{i:04}","name":"{tag}","status":"{status}","trafficAllocation":0.5,
        "variants":[{{"key":"a"}},{{"key":"b"}}],"assignment":{{"salt":"s{i}"{hash_key}}},
        "targeting":{{"include":["region:US","plan:{p}"],"exclude":["bot:true"],
          "rules":[{{"attribute":"version","op":"semver_gte","value":"1.{v}.0"}}]{segments}}}}}"#,
        p = i % 3,
        v = i / 100,
    )
}

fn files(n: usize, tag: &str, bad: bool) -> Vec<RawFile> {
    (0..n)
        .step_by(100)
        .map(|start| {
            let items: Vec<String> = (start..(start + 100).min(n))
                .map(|i| exp(i, tag, bad))
                .collect();
            let decls = if start == 0 {
                r#""segments":{"gold":{"include":["tier:gold"]}},"#
            } else {
                ""
            };
            RawFile {
                path: PathBuf::from(format!("/cfg/f{start:05}.json")),
                bytes: format!(r#"{{{decls}"experiments":[{}]}}"#, items.join(",")).into_bytes(),
            }
        })
        .collect()
}

fn show(r: Result<Snapshot, ConfigErrors>) -> String {
    match r {
        Ok(s) => format!("{s:?}"),
        Err(e) => format!("{:?}", e.0),
    }
}

/// Shared and unshared, on one thread and on two.
fn check(raw: &[RawFile], previous: Option<&Snapshot>) -> String {
    let unshared = show(Snapshot::from_raw_with(raw, previous, usize::MAX, false));
    for parallel_from in [usize::MAX, 1] {
        let shared = show(Snapshot::from_raw_with(raw, previous, parallel_from, true));
        assert_eq!(shared, unshared, "two threads: {}", parallel_from == 1);
    }
    unshared
}

#[test]
fn shared_targeting_compiles_to_the_same_snapshot() {
    let raw = files(1200, "a", false);
    assert!(check(&raw, None).starts_with("Snapshot"));
    let snap = Snapshot::from_raw(&raw).unwrap();
    // Experiments that target alike share their conditions (after their memo
    // slots are set); those that read another unit attribute do not.
    let conds = |k: &str| &snap.experiment(k).unwrap().targeting.conds;
    assert!(Arc::ptr_eq(conds("e0002"), conds("e0011")));
    assert!(!Arc::ptr_eq(conds("e0002"), conds("e0001")));
    // The gathered attributes follow each experiment's unit attribute.
    let reads = |k: &str| snap.experiment(k).unwrap().reads.names().to_vec();
    assert_eq!(&*reads("e0004")[0], "region");
    assert_eq!(&*reads("e0002")[0], "targetingKey");
    assert!(conds("e0004").iter().all(|c| c.read < reads("e0004").len()));
    // A paused experiment gets no memo slot; a running one with the same
    // targeting does.
    assert!(conds("e0010").iter().all(|c| c.memo == usize::MAX));
    assert!(conds("e0022").iter().any(|c| c.memo != usize::MAX));
}

#[test]
fn invalid_targeting_reports_every_experiment() {
    let raw = files(300, "a", true);
    let out = check(&raw, None);
    let Err(errors) = Snapshot::from_raw(&raw) else {
        panic!("the config is invalid: {}", &out[..200.min(out.len())])
    };
    let unknown = errors
        .0
        .iter()
        .filter(|e| e.message.contains("unknown segment"))
        .count();
    assert_eq!(unknown, (0..300).filter(|i| i % 7 == 3).count());
}

#[test]
fn a_reload_shares_like_a_full_compile() {
    let served = Snapshot::from_raw(&files(1200, "a", false)).unwrap();
    let every = files(1200, "b", false);
    check(&every, Some(&served));
    let mut some = files(1200, "a", false);
    some[3] = every[3].clone();
    check(&some, Some(&served));
    let snap = Snapshot::from_raw_reusing(&some, Some(&served)).unwrap();
    assert_eq!(snap.reused_experiments(), 1100);
}

#[test]
fn operands_equal_under_eq_but_written_apart_are_not_shared() {
    // `0.0 == -0.0`, yet `in [-0.0]` tests the text `-0.0`: the second
    // experiment must not take the first one's conditions.
    let exp = |k: &str, v: &str| {
        format!(
            r#"{{"experimentId":"{k}","status":"running","variants":["a"],
            "targeting":{{"rules":[{{"attribute":"n","op":"in","value":[{v}]}}]}}}}"#
        )
    };
    let raw = [RawFile {
        path: PathBuf::from("/cfg/z.json"),
        bytes: format!("[{},{}]", exp("p", "0.0"), exp("q", "-0.0")).into_bytes(),
    }];
    check(&raw, None);
    let snap = Snapshot::from_raw(&raw).unwrap();
    let text = |k: &str| {
        snap.experiment(k).unwrap().targeting.conds[0]
            .text
            .to_string()
    };
    assert_eq!(text("p"), "n in [0.0]");
    assert_eq!(text("q"), "n in [-0.0]");
}
