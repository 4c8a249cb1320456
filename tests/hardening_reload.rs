//! Reload hardening against the real binary (issue 15): size limits, a watch that
//! survives the directory being replaced, settled content for plain directories
//! (ConfigMap swaps stay immediate), and one summary line per reload.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::binary::{experiment, spawn};
use support::http::http_get_blocking;
use support::wait::wait_until;

fn applied(s: &support::binary::Server) -> u64 {
    s.readyz()["reloads"]["applied"].as_u64().unwrap()
}

/// A 1 GiB sparse file is refused from its metadata, unread, with an error that
/// names it and the flag; the last good config keeps serving.
#[test]
fn an_oversized_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(dir.path(), &["--settle", "0", "--poll-interval", "200ms"]);
    let big = std::fs::File::create(dir.path().join("big.json")).unwrap();
    big.set_len(1 << 30).unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        s.readyz()["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("big.json") && e.contains("--max-config-file-bytes"))
    }));
    assert_eq!(
        s.readyz()["experiments"],
        1,
        "last good config keeps serving"
    );
    // The total limit, with small files.
    drop(big);
    std::fs::remove_file(dir.path().join("big.json")).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    for k in ["a", "b", "c"] {
        std::fs::write(dir2.path().join(format!("{k}.json")), experiment(k)).unwrap();
    }
    let len = experiment("a").len();
    let s2 = spawn(
        dir2.path(),
        &["--max-config-total-bytes", &(2 * len).to_string()],
    );
    let e = s2.readyz();
    assert_eq!(e["ready"], false);
    assert!(
        e["last_reload_error"].as_str().unwrap().contains("c.json"),
        "{e}"
    );
}

/// The directory is deleted and recreated; with the poll off, only a re-armed
/// inotify watch can notice the files written into the new directory.
#[test]
fn the_watch_survives_the_directory_being_replaced() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.json"), experiment("a")).unwrap();
    let s = spawn(&dir, &["--poll-interval", "0", "--settle", "0"]);
    for round in 0..2 {
        std::fs::remove_dir_all(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::create_dir(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for k in 0..=round + 1 {
            std::fs::write(dir.join(format!("n{k}.json")), experiment(&format!("n{k}"))).unwrap();
        }
        let want = round + 2;
        assert!(
            wait_until(Duration::from_secs(15), || s.readyz()["experiments"]
                == want),
            "round {round}: {} {:?}",
            s.readyz(),
            s.logs()
        );
    }
}

/// Four running experiments, one per file, are rewritten file by file (remove
/// all, then copy back one at a time). A reader polling all along must only ever
/// see the whole old or the whole new config, never a partial one.
#[test]
fn a_plain_directory_copied_file_by_file_is_never_served_partially() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c", "d"];
    for k in names {
        std::fs::write(dir.path().join(format!("{k}.json")), experiment(k)).unwrap();
    }
    let s = spawn(dir.path(), &["--settle", "1s", "--removal-settle", "4s"]);
    let admin = s.admin;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut counts = std::collections::BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                let (_, body) = http_get_blocking(admin, "/readyz");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                *counts
                    .entry(v["experiments"].as_u64().unwrap())
                    .or_insert(0u64) += 1;
            }
            counts
        })
    };
    for k in names {
        std::fs::remove_file(dir.path().join(format!("{k}.json"))).unwrap();
    }
    for k in ["a", "b", "c", "d", "e"] {
        std::thread::sleep(Duration::from_millis(150));
        std::fs::write(dir.path().join(format!("{k}.json")), experiment(k)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(20), || s.readyz()
        ["experiments"]
        == 5));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let counts = seen.join().unwrap();
    assert!(
        counts.keys().all(|&n| n == 4 || n == 5),
        "partial configs were served: {counts:?}"
    );
    assert_eq!(applied(&s), 2, "the start and the final config only");
}

/// 20,000 files created one by one apply at most one intermediate config.
#[test]
fn twenty_thousand_files_apply_at_most_one_intermediate_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), experiment("a")).unwrap();
    let s = spawn(dir.path(), &["--settle", "1s"]);
    let before = applied(&s);
    let n = 20_000;
    for i in 0..n {
        std::fs::write(
            dir.path().join(format!("e{i:05}.json")),
            experiment(&format!("e{i}")),
        )
        .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(120), || s.readyz()["experiments"]
            == n + 1),
        "{}",
        s.readyz()
    );
    let extra = applied(&s) - before;
    assert!((1..=2).contains(&extra), "{extra} configs applied");
}

/// A ConfigMap `..data` swap is atomic, so it is applied without the settle wait.
#[test]
fn configmap_swaps_stay_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let w = support::kubelet::AtomicWriter::new(dir.path());
    w.write(&[("a.json", &experiment("a"))]).unwrap();
    let s = spawn(dir.path(), &["--settle", "60s", "--removal-settle", "60s"]);
    w.write(&[("b.json", &experiment("b")), ("c.json", &experiment("c"))])
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || s.readyz()["experiments"] == 2),
        "{}",
        s.readyz()
    );
}

/// Removing 2,000 running experiments logs one guard line, not 2,000; /readyz
/// has the count and a bounded list.
#[test]
fn guard_warnings_are_summarised_per_reload() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<String> = (0..2000).map(|i| experiment(&format!("e{i}"))).collect();
    let f = dir.path().join("all.json");
    std::fs::write(&f, format!("[{}]", all.join(","))).unwrap();
    let s = spawn(dir.path(), &["--settle", "0", "--removal-settle", "0"]);
    let tmp = dir.path().join(".all.tmp");
    std::fs::write(&tmp, format!("[{}]", experiment("keep"))).unwrap();
    std::fs::rename(&tmp, &f).unwrap();
    assert!(wait_until(Duration::from_secs(30), || s.readyz()
        ["experiments"]
        == 1));
    let r = s.readyz();
    assert_eq!(r["last_reload_warnings"]["total"], 2000, "{r}");
    let items = r["last_reload_warnings"]["items"].as_array().unwrap().len();
    assert!((1..=200).contains(&items), "{items}");
    std::thread::sleep(Duration::from_millis(300));
    let guard_lines = s
        .logs()
        .iter()
        .filter(|l| l.contains("cohort guard"))
        .count();
    assert!((1..=2).contains(&guard_lines), "{guard_lines} guard lines");
}
