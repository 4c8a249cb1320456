//! Reloads that copy unchanged experiments from the served snapshot
//! (`cohortd::snapshot::reuse`) give exactly what compiling from scratch gives:
//! the same experiments, version and errors. Each test reloads a real directory
//! with `reload_now` and compares the served snapshot with `Snapshot::load` of the
//! same directory.

use std::path::Path;

use cohortd::reload::{reload_now, ReloadOutcome, Store};
use cohortd::Snapshot;

fn exp(key: &str, name: &str) -> String {
    format!(
        r#"{{"key":"{key}","name":"{name}","status":"running","variants":["control","treatment"]}}"#
    )
}

fn write(dir: &Path, file: &str, items: &[String]) {
    std::fs::write(dir.join(file), format!("[{}]", items.join(","))).unwrap();
}

fn applied(dir: &Path, store: &Store) -> cohortd::reload::ReloadEvent {
    match reload_now(dir, store) {
        ReloadOutcome::Applied(ev) => ev,
        other => panic!("expected an applied reload, got {other:?}"),
    }
}

fn rejected(dir: &Path, store: &Store) -> cohortd::config::ConfigErrors {
    match reload_now(dir, store) {
        ReloadOutcome::Rejected(e) => e,
        other => panic!("expected a rejected reload, got {other:?}"),
    }
}

/// The served snapshot equals a from-scratch compile of `dir`: version and every
/// compiled field of every experiment (their `Debug` form lists them all).
fn assert_same_as_scratch(dir: &Path, store: &Store) {
    let served = store.load().expect("a snapshot is served");
    let scratch = Snapshot::load(dir).expect("the directory is valid");
    assert_eq!(scratch.reused_experiments(), 0);
    assert_eq!(served.version(), scratch.version());
    let show = |s: &Snapshot| -> Vec<String> {
        s.experiments().iter().map(|e| format!("{e:?}")).collect()
    };
    assert_eq!(show(&served), show(&scratch));
}

/// a.json with `a1` and b.json with `b1`, applied: the store and its version.
fn two_files_served(d: &Path) -> (Store, String) {
    write(d, "a.json", &[exp("a1", "x")]);
    write(d, "b.json", &[exp("b1", "x")]);
    let store = Store::default();
    applied(d, &store);
    let good = store.load().unwrap().version().to_owned();
    (store, good)
}

#[test]
fn experiments_of_unchanged_files_are_reused_and_changed_ones_compiled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.json", &[exp("a1", "x"), exp("a2", "x")]);
    write(d, "b.json", &[exp("b1", "x"), exp("b2", "x")]);
    let store = Store::default();
    applied(d, &store);
    assert_eq!(store.load().unwrap().reused_experiments(), 0);

    write(d, "b.json", &[exp("b1", "x"), exp("b2", "renamed")]);
    let ev = applied(d, &store);
    assert_eq!(ev.changed, vec!["b2"]);
    // a1, a2 (file unchanged) and b1 (unchanged in a changed file).
    assert_eq!(store.load().unwrap().reused_experiments(), 3);
    assert_same_as_scratch(d, &store);
}

#[test]
fn a_changed_file_is_validated_again_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, good) = two_files_served(d);

    let bad =
        r#"{"key":"b1","status":"running","variants":[{"key":"control","weight":-1},"treatment"]}"#;
    write(d, "b.json", &[bad.to_owned()]);
    let errs = rejected(d, &store);
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert!(errs.0[0].file.ends_with("b.json"), "{errs}");
    assert_eq!(errs.0[0].experiment.as_deref(), Some("b1"));
    assert_eq!(errs.0[0].field.as_deref(), Some("variants[0].weight"));
    assert_eq!(
        store.load().unwrap().version(),
        good,
        "the last good config serves"
    );
}

#[test]
fn a_changed_segment_validates_again_the_unchanged_experiments_using_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = |include: &str| {
        format!(r#"{{"segments":{{"beta":{{"include":["{include}"]}}}},"experiments":[]}}"#)
    };
    std::fs::write(d.join("a.json"), doc("plan:beta")).unwrap();
    let user =
        r#"{"key":"b1","status":"running","variants":["c","t"],"targeting":{"segments":["beta"]}}"#;
    write(d, "b.json", &[user.to_owned(), exp("b2", "x")]);
    let store = Store::default();
    applied(d, &store);

    // b.json's bytes do not change, but b1 depends on the segment: recompiled.
    std::fs::write(d.join("a.json"), doc("plan:gold")).unwrap();
    let ev = applied(d, &store);
    assert_eq!(ev.changed, vec!["b1"]);
    assert_eq!(store.load().unwrap().reused_experiments(), 1, "only b2");
    assert_same_as_scratch(d, &store);

    // A segment that no longer compiles is reported against b1, in b.json.
    std::fs::write(d.join("a.json"), doc("no-colon")).unwrap();
    let errs = rejected(d, &store);
    assert!(
        errs.0.iter().any(|e| e.file.ends_with("b.json")
            && e.experiment.as_deref() == Some("b1")
            && e.field.as_deref() == Some("segments.beta.include[0]")),
        "{errs}"
    );
}

#[test]
fn a_file_that_reverts_serves_its_first_version_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.json", &[exp("a1", "x")]);
    write(d, "b.json", &[exp("b1", "first")]);
    let store = Store::default();
    applied(d, &store);
    let first = store.load().unwrap().version().to_owned();

    write(d, "b.json", &[exp("b1", "second")]);
    applied(d, &store);
    assert_ne!(store.load().unwrap().version(), first);

    write(d, "b.json", &[exp("b1", "first")]);
    let ev = applied(d, &store);
    assert_eq!(ev.changed, vec!["b1"]);
    assert_eq!(store.load().unwrap().version(), first);
    assert_same_as_scratch(d, &store);
}

#[test]
fn a_deleted_file_removes_its_experiments_and_a_moved_one_names_its_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.json", &[exp("a1", "x")]);
    write(d, "b.json", &[exp("b1", "x"), exp("b2", "x")]);
    let store = Store::default();
    applied(d, &store);

    std::fs::remove_file(d.join("b.json")).unwrap();
    write(d, "c.json", &[exp("b2", "x")]);
    let ev = applied(d, &store);
    assert_eq!(ev.removed, vec!["b1"]);
    let served = store.load().unwrap();
    assert_eq!(served.reused_experiments(), 1, "a1 only: b2 moved file");
    assert!(served.experiment("b2").unwrap().source.ends_with("c.json"));
    assert_same_as_scratch(d, &store);
}

#[test]
fn a_reshuffle_in_a_changed_file_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, good) = two_files_served(d);

    let salted = r#"{"key":"b1","status":"running","variants":["control","treatment"],"assignment":{"salt":"new"}}"#;
    write(d, "b.json", &[salted.to_owned()]);
    let errs = rejected(d, &store);
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert!(errs.0[0].file.ends_with("b.json"), "{errs}");
    assert_eq!(errs.0[0].field.as_deref(), Some("assignment.salt"));
    assert!(errs.0[0].message.contains("cohort guard"), "{errs}");
    assert_eq!(store.load().unwrap().version(), good);
    assert_eq!(store.status().guard_rejected, 1);
}

/// The version is SeaHash of the whole merged document serialised as compact
/// JSON (experiments sorted by key), as every release before computed it from
/// scratch: rebuilt here from the served experiments' configs and the rest of
/// the document, so pods on old and new releases agree.
fn assert_version_is_the_whole_document_hash(snap: &Snapshot) {
    let mut doc = snap.document().clone();
    doc.experiments = snap
        .experiments()
        .iter()
        .map(|e| (*e.config).clone())
        .collect();
    let bytes = serde_json::to_vec(&doc).unwrap();
    assert_eq!(
        snap.version(),
        format!("{:016x}", seahash::hash(&bytes)),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn unchanged_files_are_not_parsed_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.json", &[exp("a1", "x"), exp("a2", "x")]);
    write(d, "b.json", &[exp("b1", "x")]);
    write(d, "c.json", &[exp("c1", "x")]);
    let store = Store::default();
    applied(d, &store);
    assert_eq!(store.load().unwrap().reused_files(), 0);

    write(d, "c.json", &[exp("c1", "y")]);
    let ev = applied(d, &store);
    assert_eq!(ev.changed, vec!["c1"]);
    let served = store.load().unwrap();
    assert_eq!(served.reused_files(), 2, "a.json and b.json from the cache");
    assert_eq!(served.reused_experiments(), 3);
    assert_version_is_the_whole_document_hash(&served);
    assert_same_as_scratch(d, &store);

    // New bytes, same content (whitespace): parsed again, nothing to apply.
    std::fs::write(
        d.join("a.json"),
        format!("[ {} ,\n {} ]\n", exp("a1", "x"), exp("a2", "x")),
    )
    .unwrap();
    assert_eq!(reload_now(d, &store), ReloadOutcome::Unchanged);
}

#[test]
fn changed_bytes_of_a_cached_file_are_parsed_again_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, good) = two_files_served(d);
    // Served twice, so a.json's document is in the cache of the served snapshot.
    write(d, "b.json", &[exp("b1", "y")]);
    applied(d, &store);
    assert_eq!(store.load().unwrap().reused_files(), 1);
    let good2 = store.load().unwrap().version().to_owned();
    assert_ne!(good, good2);

    let bad =
        r#"{"key":"a1","status":"running","variants":["control"],"trafficAllocation":"half"}"#;
    write(d, "a.json", &[bad.to_owned()]);
    for _ in 0..2 {
        // A file with a problem is never cached: the same error every time.
        let errs = rejected(d, &store);
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert!(errs.0[0].file.ends_with("a.json"), "{errs}");
        assert_eq!(errs.0[0].experiment.as_deref(), Some("a1"), "{errs}");
        assert_eq!(
            errs.0[0].field.as_deref(),
            Some("trafficAllocation"),
            "{errs}"
        );
        assert_eq!(
            store.load().unwrap().version(),
            good2,
            "the last good config serves"
        );
    }
    // Reverted to the cached bytes: back to the served version, nothing applied.
    write(d, "a.json", &[exp("a1", "x")]);
    assert_eq!(reload_now(d, &store), ReloadOutcome::Unchanged);
    assert!(store.status().last_error.is_none());
}

#[test]
fn a_moved_file_with_the_same_bytes_is_parsed_under_its_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (store, _) = two_files_served(d);
    let before = store.load().unwrap().version().to_owned();
    std::fs::rename(d.join("b.json"), d.join("z.json")).unwrap();
    // Same content, so the same version: nothing to apply, but a later change
    // must name the new file.
    assert_eq!(reload_now(d, &store), ReloadOutcome::Unchanged);
    assert_eq!(store.load().unwrap().version(), before);
    let bad = r#"{"key":"b1","status":"running","variants":[]}"#;
    write(d, "z.json", &[bad.to_owned()]);
    let errs = rejected(d, &store);
    assert!(errs.0[0].file.ends_with("z.json"), "{errs}");
}

#[test]
fn versions_are_those_of_the_whole_document_with_every_kind_of_declaration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shared = r#"{"segments":{"beta":{"include":["plan:beta"]}},
        "layers":[{"key":"l","salt":"s"}],
        "holdouts":[{"key":"h","fraction":0.05}],
        "experiments":[{"key":"m1","status":"running","variants":["a","b"],
          "layer":{"key":"l","range":[0,0.5]},"holdout":"h","targeting":{"segments":["beta"]}}]}"#;
    std::fs::write(d.join("a.json"), shared).unwrap();
    write(d, "b.json", &[exp("b1", "x"), exp("a0", "x")]);
    let store = Store::default();
    applied(d, &store);
    assert_version_is_the_whole_document_hash(&store.load().unwrap());
    write(
        d,
        "b.json",
        &[exp("b1", "y"), exp("a0", "x"), exp("zz", "x")],
    );
    applied(d, &store);
    let served = store.load().unwrap();
    assert_eq!(served.reused_files(), 1);
    assert_version_is_the_whole_document_hash(&served);
    assert_same_as_scratch(d, &store);
    // Experiments only, and an empty config.
    std::fs::remove_file(d.join("a.json")).unwrap();
    applied(d, &store);
    assert_version_is_the_whole_document_hash(&store.load().unwrap());
}

/// `0.0 == -0.0` under the configs' `==`, but the two are written apart (in the
/// experiment's serialisation, its fingerprint, the version and the value a
/// client receives): a reload that only flips a zero's sign compiles the
/// experiment again instead of reusing the served one.
#[test]
fn a_zero_that_changes_sign_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let valued = |zero: &str| {
        format!(
            r#"{{"key":"v1","status":"running","variants":[{{"key":"c","value":{zero}}},"t"]}}"#
        )
    };
    let doc = |zero: &str| {
        format!(
            r#"{{"segments":{{"s":{{"rules":[{{"attribute":"n","op":"in","value":[{zero}]}}]}}}},"experiments":[]}}"#
        )
    };
    let user =
        r#"{"key":"u1","status":"running","variants":["c","t"],"targeting":{"segments":["s"]}}"#;
    write(d, "a.json", &[valued("0.0"), exp("a2", "x")]);
    std::fs::write(d.join("s.json"), doc("0.0")).unwrap();
    write(d, "u.json", &[user.to_owned()]);
    let store = Store::default();
    applied(d, &store);
    let first = store.load().unwrap().version().to_owned();

    // The variant's value in a changed file: v1 again, a2 reused.
    write(d, "a.json", &[valued("-0.0"), exp("a2", "x")]);
    applied(d, &store);
    assert_eq!(store.load().unwrap().reused_experiments(), 2, "a2 and u1");
    assert_same_as_scratch(d, &store);
    assert_ne!(store.load().unwrap().version(), first);

    // A segment's operand: u1, whose file did not change, compiles again.
    std::fs::write(d.join("s.json"), doc("-0.0")).unwrap();
    applied(d, &store);
    assert_eq!(store.load().unwrap().reused_experiments(), 2, "v1 and a2");
    assert_same_as_scratch(d, &store);
}
