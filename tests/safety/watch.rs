//! The cohort guard through the directory watcher: a ConfigMap-style update
//! (the kubelet's `AtomicWriter`: new timestamped directory, `..data` swapped) that rotates a
//! running experiment's salt is refused; the same change with an epoch bump applies;
//! a new unit attribute is refused; lowering traffic and removing a variant apply.

use std::sync::Arc;
use std::time::Duration;

use cohortd::reload::watch::{spawn, WatchOptions};
use cohortd::reload::{reload_now, ReloadOutcome, Store};

use crate::support::kubelet::AtomicWriter;

const BASE: &str =
    r#"{"key":"e","status":"running","trafficAllocation":0.5,"variants":["a","b","c"]}"#;

/// Waits (bounded: 10 s in 20 ms steps) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_refuses_a_salt_change_and_applies_it_with_an_epoch_bump() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let volume = AtomicWriter::new(dir);
    let publish = |text: &str| volume.write(&[("exp.json", text)]).unwrap();
    publish(BASE);
    let store = Store::new();
    assert!(matches!(reload_now(dir, &store), ReloadOutcome::Applied(_)));
    let served = store.load().unwrap().version().to_owned();
    let opts = WatchOptions {
        debounce: Duration::from_millis(20),
        poll_interval: Duration::from_millis(200),
        events: true,
        ..WatchOptions::default()
    };
    let watcher = spawn(dir.to_owned(), Arc::clone(&store), opts).unwrap();

    let salted = BASE.replace(r#""variants""#, r#""assignment":{"salt":"q4"},"variants""#);
    publish(&salted);
    until("the guard to refuse the salt change", || {
        store.status().guard_rejected >= 1
    })
    .await;
    assert_eq!(
        store.load().unwrap().version(),
        served,
        "served snapshot stays"
    );
    let err = store.status().last_error.unwrap();
    assert!(
        err.contains("assignment.salt") && err.contains("cohort guard"),
        "{err}"
    );

    let acked = salted.replace(r#""salt":"q4""#, r#""salt":"q4","epoch":1"#);
    publish(&acked);
    until("the acknowledged change to apply", || {
        store.load().unwrap().version() != served
    })
    .await;
    let snap = store.load().unwrap();
    assert_eq!(snap.experiment("e").unwrap().epoch, 1);
    assert!(store.status().last_error.is_none());

    // A new unit attribute is refused the same way.
    let served = snap.version().to_owned();
    // Relative counts: the watcher may refuse one content more than once (an event
    // and a poll can both re-read it), so count from what has been seen so far.
    let refused_before = store.status().guard_rejected;
    let rekeyed = acked.replace(r#""epoch":1"#, r#""epoch":1,"hashKey":"userId""#);
    publish(&rekeyed);
    until("the guard to refuse the hashKey change", || {
        store.status().guard_rejected > refused_before
    })
    .await;
    assert_eq!(store.load().unwrap().version(), served);
    assert!(store
        .status()
        .last_error
        .unwrap()
        .contains("assignment.hashKey"));

    // Lowering traffic and removing a variant are allowed.
    let lowered = acked.replace("0.5", "0.2").replace(r#","c"]"#, "]");
    publish(&lowered);
    until("the allowed change to apply", || {
        store.load().unwrap().version() != served
    })
    .await;
    let snap = store.load().unwrap();
    assert_eq!(snap.experiment("e").unwrap().variants.len(), 2);
    assert!(store.status().guard_rejected > refused_before);
    assert!(store.status().last_error.is_none());
    watcher.stop().await;
}
