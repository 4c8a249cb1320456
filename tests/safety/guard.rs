//! The reload guard end to end: real files in a directory, `reload_now`, and the
//! store's status (what metrics and readiness read).

use cohortd::reload::{reload_now, ReloadOutcome, Store};

const BASE: &str =
    r#"{"key":"e","status":"running","trafficAllocation":0.5,"variants":["a","b","c"]}"#;

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    fn new(text: &str) -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
            store: Store::default(),
        };
        f.write(text);
        assert!(matches!(f.reload(), ReloadOutcome::Applied(_)));
        f
    }

    fn write(&self, text: &str) {
        std::fs::write(self.dir.path().join("exp.json"), text).unwrap();
    }

    fn reload(&self) -> ReloadOutcome {
        reload_now(self.dir.path(), &self.store)
    }

    fn version(&self) -> String {
        self.store.load().unwrap().version().to_owned()
    }

    /// Writes `text` and asserts the guard refuses it as a whole.
    fn refused(&self, text: &str, field: &str) -> String {
        let before = self.version();
        let st0 = self.store.status();
        self.write(text);
        let ReloadOutcome::Rejected(errs) = self.reload() else {
            panic!("must be refused: {text}")
        };
        assert_eq!(errs.0[0].experiment.as_deref(), Some("e"));
        assert_eq!(errs.0[0].field.as_deref(), Some(field));
        assert_eq!(self.version(), before, "the served snapshot stays");
        let st = self.store.status();
        assert_eq!(st.guard_rejected, st0.guard_rejected + 1);
        assert_eq!(st.rejected, st0.rejected + 1);
        let msg = st.last_error.unwrap();
        assert!(
            msg.contains("cohort guard") && msg.contains("exp.json"),
            "{msg}"
        );
        assert!(
            msg.contains("assignment.epoch"),
            "says how to proceed: {msg}"
        );
        msg
    }

    /// Writes `text` and asserts it is applied.
    fn applied(&self, text: &str) {
        self.write(text);
        match self.reload() {
            ReloadOutcome::Applied(ev) => assert_eq!(ev.version, self.version()),
            other => panic!("must apply: {other:?}\n{text}"),
        }
        assert!(self.store.status().last_error.is_none());
    }
}

fn with_assignment(a: &str) -> String {
    BASE.replace(r#""variants""#, &format!(r#""assignment":{a},"variants""#))
}

#[test]
fn salt_change_is_refused_until_the_epoch_is_bumped() {
    let f = Fixture::new(BASE);
    let msg = f.refused(&with_assignment(r#"{"salt":"rotated"}"#), "assignment.salt");
    assert!(msg.contains("salt changed"), "{msg}");
    // The rejection is not sticky: the next good reload applies and clears it.
    f.applied(&with_assignment(r#"{"salt":"rotated","epoch":1}"#));
    let snap = f.store.load().unwrap();
    assert_eq!(snap.experiment("e").unwrap().epoch, 1);
    assert_eq!(f.store.status().guard_rejected, 1);
}

#[test]
fn hash_key_change_is_refused() {
    let f = Fixture::new(BASE);
    f.refused(
        &with_assignment(r#"{"hashKey":"userId"}"#),
        "assignment.hashKey",
    );
    f.applied(&with_assignment(r#"{"hashKey":"userId","epoch":3}"#));
}

#[test]
fn one_refused_experiment_rejects_the_whole_reload() {
    let two = |salt: &str, other: &str| {
        format!(
            r#"[{},{{"key":"f","status":"running","variants":["{other}"]}}]"#,
            with_assignment(&format!(r#"{{"salt":"{salt}"}}"#))
        )
    };
    let f = Fixture::new(&two("s1", "x"));
    f.refused(&two("s2", "y"), "assignment.salt");
    let snap = f.store.load().unwrap();
    assert_eq!(&*snap.experiment("f").unwrap().variants[0].key, "x");
}

#[test]
fn variant_removal_reorder_and_reweight_are_allowed() {
    let f = Fixture::new(BASE);
    f.applied(&BASE.replace(r#"["a","b","c"]"#, r#"["c","b","a"]"#));
    f.applied(&BASE.replace(r#"["a","b","c"]"#, r#"["c","a"]"#));
    f.applied(&BASE.replace(
        r#"["a","b","c"]"#,
        r#"[{"key":"c","weight":3},{"key":"a","weight":1}]"#,
    ));
    assert_eq!(f.store.status().guard_rejected, 0);
}

#[test]
fn lowering_and_raising_traffic_are_allowed() {
    let f = Fixture::new(BASE);
    f.applied(&BASE.replace("0.5", "0.1"));
    f.applied(&BASE.replace("0.5", "0.9"));
    assert_eq!(f.store.status().guard_rejected, 0);
}

#[test]
fn moving_a_layer_range_is_refused() {
    let layered = |range: &str, epoch: u32| {
        format!(
            r#"{{"key":"e","status":"running","variants":["a","b"],"assignment":{{"epoch":{epoch}}},"layer":{{"key":"L","range":{range}}}}}"#
        )
    };
    let f = Fixture::new(&layered("[0.0, 0.5]", 0));
    f.refused(&layered("[0.5, 1.0]", 0), "layer");
    f.applied(&layered("[0.0, 0.8]", 0));
    f.applied(&layered("[0.5, 1.0]", 1));
}

#[test]
fn stopped_experiments_may_change_and_stopping_is_allowed() {
    let f = Fixture::new(BASE);
    let stopped = BASE.replace("running", "stopped");
    f.applied(&stopped);
    f.applied(&with_assignment(r#"{"salt":"fresh"}"#).replace("running", "stopped"));
    // Restarting with the new salt enrols afresh: nobody enrolled is reassigned.
    f.applied(&with_assignment(r#"{"salt":"fresh"}"#));
}

/// Captures what the guard logs during `f` (a thread-local subscriber; reloads
/// run synchronously on this thread).
fn logs(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(sub, f);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn lowering_traffic_logs_the_fraction_dropped_and_refusals_log_the_diff() {
    let f = Fixture::new(BASE);
    let text = logs(|| f.applied(&BASE.replace("0.5", "0.2")));
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("60.00% of enrolled units leave"), "{text}");
    assert!(text.contains("traffic lowered 0.5 -> 0.2"), "{text}");
    let text = logs(|| {
        f.refused(
            &with_assignment(r#"{"salt":"x"}"#).replace("0.5", "0.2"),
            "assignment.salt",
        );
    });
    assert!(
        text.contains("ERROR") && text.contains("reload refused"),
        "{text}"
    );
    assert!(
        text.contains("salt changed") && text.contains("moved="),
        "{text}"
    );
}
