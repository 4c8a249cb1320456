//! The config watcher against real directories: kubelet ConfigMap updates, editors
//! saving by rename, files added and removed, invalid and unreadable rewrites,
//! bursts, and the content-hash fallback when no events arrive.
//!
//! Every wait polls the store with a deadline; nothing asserts on a fixed sleep.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cohortd::reload::{reload_now, watch, ReloadOutcome, Store, WatchError, WatchOptions};
use support::compile::version_of;
use support::kubelet::AtomicWriter;

/// A running experiment whose `name` makes each generation's content distinct.
fn exp(key: &str, name: &str) -> String {
    format!(
        r#"{{"key":"{key}","name":"{name}","status":"running","variants":["control","treatment"]}}"#
    )
}

fn served_version(store: &Store) -> Option<String> {
    store.load().map(|s| s.version().to_owned())
}

/// Polls `pred` every 10 ms for up to 20 s (generous: the box is shared).
async fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Filesystem events only: the poll is off, so only events can explain a reload.
fn events_only() -> WatchOptions {
    WatchOptions {
        poll_interval: Duration::ZERO,
        ..WatchOptions::default()
    }
}

fn start(dir: &Path, opts: WatchOptions) -> (Arc<Store>, watch::WatchHandle) {
    let store = Store::new();
    assert!(matches!(reload_now(dir, &store), ReloadOutcome::Applied(_)));
    let handle = watch::spawn(dir.to_owned(), Arc::clone(&store), opts).unwrap();
    (store, handle)
}

#[tokio::test]
async fn kubelet_atomic_writer_updates_are_each_served() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(tmp.path());
    let a1 = exp("a", "a1");
    let b1 = exp("b", "b1");
    writer.write(&[("a.json", &a1), ("b.json", &b1)]).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    assert_eq!(
        served_version(&store),
        Some(version_of(&[("a.json", &a1), ("b.json", &b1)]))
    );

    // Several updates in a row, including one that drops b.json and adds c.yaml
    // (the kubelet leaves b.json dangling for a moment) and one that brings b back.
    for generation in 2..=7 {
        let a = exp("a", &format!("a{generation}"));
        let b = exp("b", &format!("b{generation}"));
        let c = format!("key: c\nname: c{generation}\nstatus: running\nvariants: [x, y]\n");
        let payload: Vec<(&str, &str)> = if generation == 4 {
            vec![("a.json", &a), ("c.yaml", &c)]
        } else {
            vec![("a.json", &a), ("b.json", &b)]
        };
        writer.write(&payload).unwrap();
        let want = version_of(&payload);
        wait_until(&format!("generation {generation}"), || {
            served_version(&store).as_deref() == Some(want.as_str())
        })
        .await;
        let snap = store.load().unwrap();
        assert_eq!(snap.experiment("b").is_some(), generation != 4);
        assert_eq!(snap.experiment("c").is_some(), generation == 4);
    }
    // Only the current payload directory is left behind.
    let hidden: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != "..data")
        .collect();
    assert_eq!(hidden.len(), 1, "{hidden:?}");
    handle.stop().await;
}

#[tokio::test]
async fn editor_save_by_rename_is_seen_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.json");
    std::fs::write(&file, exp("a", "v1")).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    for v in 2..=4 {
        let text = exp("a", &format!("v{v}"));
        // Write a temporary file, then rename it over the original: a new inode
        // each time, which a watch on the file itself would not follow.
        let swap = tmp.path().join(".a.json.swp");
        std::fs::write(&swap, &text).unwrap();
        std::fs::rename(&swap, &file).unwrap();
        let want = version_of(&[("a.json", &text)]);
        wait_until(&format!("save {v}"), || {
            served_version(&store).as_deref() == Some(want.as_str())
        })
        .await;
    }
    handle.stop().await;
}

#[tokio::test]
async fn a_single_config_file_is_followed_through_renames() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("only.json");
    std::fs::write(&file, exp("a", "v1")).unwrap();
    let (store, handle) = start(&file, events_only());
    let text = exp("a", "v2");
    let swap = tmp.path().join("only.json.tmp");
    std::fs::write(&swap, &text).unwrap();
    std::fs::rename(&swap, &file).unwrap();
    let want = version_of(&[("only.json", &text)]);
    wait_until("the renamed file", || {
        served_version(&store).as_deref() == Some(want.as_str())
    })
    .await;
    handle.stop().await;
}

#[tokio::test]
async fn added_files_add_and_removed_files_remove_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.json"), exp("a", "a")).unwrap();
    std::fs::write(tmp.path().join("b.json"), exp("b", "b")).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    let mut events = store.subscribe();

    std::fs::write(
        tmp.path().join("c.yml"),
        "key: c\nstatus: running\nvariants: [x]\n",
    )
    .unwrap();
    wait_until("c added", || {
        store.load().unwrap().experiment("c").is_some()
    })
    .await;
    std::fs::remove_file(tmp.path().join("b.json")).unwrap();
    wait_until("b removed", || {
        store.load().unwrap().experiment("b").is_none()
    })
    .await;
    let snap = store.load().unwrap();
    let keys: Vec<_> = snap.experiments().iter().map(|e| &*e.key).collect();
    assert_eq!(keys, ["a", "c"]);
    // The change events name what happened.
    let mut added = Vec::new();
    let mut removed = Vec::new();
    while let Ok(ev) = events.try_recv() {
        added.extend(ev.added);
        removed.extend(ev.removed);
    }
    assert_eq!(
        (added, removed),
        (vec!["c".to_string()], vec!["b".to_string()])
    );
    handle.stop().await;
}

#[tokio::test]
async fn an_invalid_rewrite_keeps_the_last_good_config_and_reports_where() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(tmp.path());
    let good = exp("a", "good");
    writer
        .write(&[("a.json", &good), ("b.json", &exp("b", "b"))])
        .unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    let served = served_version(&store).unwrap();

    // b's variants are empty: invalid. The whole reload is refused, a included.
    let bad_b = r#"{"key":"b","status":"running","variants":[]}"#;
    writer
        .write(&[("a.json", &exp("a", "changed")), ("b.json", bad_b)])
        .unwrap();
    wait_until("the rejection", || store.status().rejected >= 1).await;
    let err = store.status().last_error.unwrap();
    assert!(err.contains("b.json"), "{err}");
    assert!(err.contains("experiment `b`"), "{err}");
    assert!(err.contains("variants"), "{err}");
    assert_eq!(served_version(&store).unwrap(), served);
    assert!(store.load().unwrap().experiment("b").is_some());

    // Fixing it applies the new content and clears the error.
    let payload = [("a.json", good.as_str()), ("b.json", &exp("b", "fixed"))];
    writer.write(&payload).unwrap();
    let want = version_of(&payload);
    wait_until("the fix", || {
        served_version(&store).as_deref() == Some(want.as_str())
    })
    .await;
    assert!(store.status().last_error.is_none());
    handle.stop().await;
}

#[tokio::test]
async fn an_unreadable_file_keeps_its_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.json"), exp("a", "a")).unwrap();
    std::fs::write(tmp.path().join("b.json"), exp("b", "b")).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    let served = served_version(&store).unwrap();

    // b.json becomes a dangling symlink (its target vanished): unreadable, not removed.
    // (Renamed into place, so no reload can see b.json briefly absent.)
    let link = tmp.path().join("b.json.new");
    std::os::unix::fs::symlink("gone/b.json", &link).unwrap();
    std::fs::rename(&link, tmp.path().join("b.json")).unwrap();
    wait_until("the rejection", || {
        store
            .status()
            .last_error
            .is_some_and(|e| e.contains("b.json"))
    })
    .await;
    assert_eq!(served_version(&store).unwrap(), served);
    assert!(store.load().unwrap().experiment("b").is_some());

    // Deleting it is a removal.
    std::fs::remove_file(tmp.path().join("b.json")).unwrap();
    wait_until("b removed", || {
        store.load().unwrap().experiment("b").is_none()
    })
    .await;
    assert!(store.status().last_error.is_none());
    handle.stop().await;
}

#[tokio::test]
async fn identical_rewrites_do_not_change_the_version() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(tmp.path());
    let payload = [("a.json", exp("a", "same"))];
    let payload: Vec<(&str, &str)> = payload.iter().map(|(n, t)| (*n, t.as_str())).collect();
    writer.write(&payload).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    let served = served_version(&store).unwrap();
    let before = store.status();
    writer.write(&payload).unwrap();
    wait_until("the no-op reload", || {
        store.status().unchanged > before.unchanged
    })
    .await;
    assert_eq!(store.status().applied, before.applied);
    assert_eq!(served_version(&store).unwrap(), served);
    handle.stop().await;
}

#[tokio::test]
async fn a_burst_of_writes_is_coalesced_into_few_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.json");
    std::fs::write(&file, exp("a", "start")).unwrap();
    let (store, handle) = start(tmp.path(), events_only());
    wait_until("the watcher's first pass", || handle.stats().reloads >= 1).await;
    let applied = store.status().applied;
    let reloads = handle.stats().reloads;

    // 50 writes 2 ms apart: without a debounce each gap would be its own reload.
    let mut last = String::new();
    for i in 0..50 {
        last = exp("a", &format!("burst-{i}"));
        std::fs::write(&file, &last).unwrap();
        // An async sleep, so the watcher runs (and sees events) between writes.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let want = version_of(&[("a.json", &last)]);
    wait_until("the final write", || {
        served_version(&store).as_deref() == Some(want.as_str())
    })
    .await;
    let applied = store.status().applied - applied;
    let reloads = handle.stats().reloads - reloads;
    assert!(applied >= 1);
    // One reload when quiet, plus a few if this shared machine stalled a writer.
    assert!(
        reloads <= 5,
        "{reloads} reloads ({applied} applied) for 50 writes"
    );
    handle.stop().await;
}

#[tokio::test]
async fn the_content_hash_poll_catches_changes_without_events() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(tmp.path());
    writer.write(&[("a.json", &exp("a", "v1"))]).unwrap();
    let opts = WatchOptions {
        events: false,
        poll_interval: Duration::from_millis(25),
        ..WatchOptions::default()
    };
    let (store, handle) = start(tmp.path(), opts);

    // No events are subscribed, so only the poll can notice this.
    let before = handle.stats().reloads;
    let text = exp("a", "v2");
    writer.write(&[("a.json", &text)]).unwrap();
    let want = version_of(&[("a.json", &text)]);
    wait_until("the poll to pick up v2", || {
        served_version(&store).as_deref() == Some(want.as_str())
    })
    .await;
    // The watcher counts a reload once its thread has returned, just after
    // the new version is served: wait for the count, so it is not taken
    // while that reload is still counting.
    wait_until("the reload to be counted", || {
        handle.stats().reloads > before
    })
    .await;

    // While the content stays the same, polls do not reload.
    let (polls, reloads, status) = (handle.stats().polls, handle.stats().reloads, store.status());
    wait_until("five more polls", || handle.stats().polls >= polls + 5).await;
    assert_eq!(handle.stats().reloads, reloads);
    assert_eq!(store.status().unchanged, status.unchanged);

    // A persistently broken file is rejected once, not once per poll.
    writer.write(&[("a.json", "{")]).unwrap();
    wait_until("the rejection", || store.status().rejected >= 1).await;
    let polls = handle.stats().polls;
    wait_until("five more polls", || handle.stats().polls >= polls + 5).await;
    assert_eq!(store.status().rejected, 1);
    assert_eq!(served_version(&store).unwrap(), want);
    handle.stop().await;
}

#[tokio::test]
async fn a_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = watch::spawn(
        tmp.path().join("nope"),
        Store::new(),
        WatchOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, WatchError::Notify { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err =
        watch::spawn(tmp.path().to_owned(), Store::new(), WatchOptions::default()).unwrap_err();
    assert!(matches!(err, WatchError::NoRuntime));
}
