//! What the OpenFeature flagd-provider tests on flagd-format files share: the
//! flag file (`tests/vectors/flagd/providers.flagd.json`), the contexts, cohortd's
//! own offline answers for them (its engine on a compiled snapshot, no server),
//! a `cohortd serve` on that file with the flagd RPC and sync listeners, and the
//! change every provider must see.
//!
//! The answers are written in OpenFeature terms, i.e. what an application calling
//! `get<Type>Details(flag, callerDefault, context)` must get: value (or "the
//! caller's default"), variant, reason, error code, and the flag's metadata. The
//! mapping from cohortd's outcome is flagd's (docs/openfeature.md "flagd flag
//! files"): a disabled flag and a missing default variant give the caller's
//! default without a variant; a targeting result that names no variant is an
//! error (`GENERAL`); a value of another type than asked is `TYPE_MISMATCH`.
//! Each client driver (Python, Node, Java) compares its provider's answers with
//! these and exits non-zero on the first difference.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cohortd::config::RawFile;
use cohortd::engine::flagd::FractionalForm;
use cohortd::Snapshot;
use serde_json::{json, Map, Value};

use super::binary::free_port;
use super::process::Driven;

/// The flag file every provider test serves.
pub const FLAGS: &str = include_str!("../vectors/flagd/providers.flagd.json");

/// The contexts each provider evaluates every flag for: a spread of targeting
/// keys, e-mails (staff or not), plans, countries and app versions (full,
/// partial, `v`-prefixed, pre-release), plus one context without a targeting
/// key and one with an empty one (the `fractional` shorthand then has no unit).
pub fn contexts() -> Vec<Value> {
    let plans = ["pro", "basic", "enterprise", "pro-max"];
    let countries = ["NL", "US", "DE"];
    let versions = ["1.2.5", "2.0.1", "v2.3.0", "1.9", "3.0.0-rc.1", "2.1.0"];
    let domains = ["example.com", "shop.io"];
    let mut out: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "targetingKey": format!("user-{i}"),
                "email": format!("u{i}@{}", domains[i % 2]),
                "plan": plans[i % 4],
                "country": countries[i % 3],
                "appVersion": versions[i % 6],
            })
        })
        .collect();
    out.push(
        json!({"email": "anon@shop.io", "plan": "pro", "country": "NL", "appVersion": "2.4.0"}),
    );
    out.push(json!({"targetingKey": "", "email": "empty@shop.io", "plan": "basic", "appVersion": "1.2.0"}));
    out.push(json!({"targetingKey": "user-bare"}));
    out
}

/// [`FLAGS`] after the change the providers must notice: the static `banner`
/// flips to `off` (RPC providers cache STATIC answers, so this checks the
/// cache is evicted), `new-checkout`'s weights flip to 75/25, `max-items`
/// serves 80 and `retired` is enabled.
pub fn changed_flags() -> String {
    let mut doc: Value = serde_json::from_str(FLAGS).unwrap();
    let flags = &mut doc["flags"];
    flags["banner"]["defaultVariant"] = "off".into();
    flags["new-checkout"]["targeting"] = json!({"fractional": [["on", 75], ["off", 25]]});
    flags["max-items"]["variants"]["many"] = 80.into();
    flags["retired"]["state"] = "ENABLED".into();
    serde_json::to_string_pretty(&doc).unwrap()
}

/// The OpenFeature type a flag is asked for: from its variants' values.
fn flag_type(variants: &Map<String, Value>) -> &'static str {
    let all = |f: fn(&Value) -> bool| variants.values().all(f);
    if all(Value::is_boolean) {
        "boolean"
    } else if all(Value::is_string) {
        "string"
    } else if all(|v| v.is_i64() || v.is_u64()) {
        "integer"
    } else if all(Value::is_number) {
        "float"
    } else {
        "object"
    }
}

/// Units in the bucketing sweep (`"sweep"` of [`expected`]).
pub const SWEEP: usize = 20_000;

/// The flags of [`FLAGS`] that are a bare `fractional` split (every unit with a
/// targeting key gets TARGETING_MATCH): weights 25/75, 50/30/20 over a
/// bucketing expression, and thirds (percentages that are not whole numbers).
pub const SWEEP_FLAGS: [&str; 3] = ["new-checkout", "headline", "layout"];

/// The type each flag is also asked for, to provoke `TYPE_MISMATCH`.
pub fn wrong_type(ty: &str) -> &'static str {
    if ty == "boolean" {
        "string"
    } else {
        "boolean"
    }
}

/// Whether a value may be served for a request of type `ty` (flagd's checks:
/// an integer request takes integral JSON numbers, a float request any number).
fn fits(value: &Value, ty: &str) -> bool {
    match ty {
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "float" => value.is_number(),
        _ => value.is_object(),
    }
}

/// One expected answer in OpenFeature terms.
fn answer(
    value: Option<&Value>,
    variant: Option<&str>,
    reason: &str,
    error: Option<&str>,
) -> Value {
    json!({
        "callerDefault": value.is_none(),
        "value": value.cloned().unwrap_or(Value::Null),
        "variant": variant,
        "reason": reason,
        "errorCode": error,
    })
}

/// cohortd's offline answers for `flags_text` bucketed with `form`:
/// `{"form", "flags": {key: type}, "metadata": {key: {...}}, "defaults": {key:
/// {"variant", "value"}}, "fractionalFlags": [...], "contexts": [...],
/// "answers": {key: [{"asType": ..., "asWrongType": ...} per context]},
/// "sweep": {"contexts": [...], "variants": {key: [variant per context]}}}`.
pub fn expected(flags_text: &str, form: FractionalForm) -> Value {
    let snap = Snapshot::from_raw(&[RawFile {
        path: "/cfg/flags.json".into(),
        bytes: flags_text.as_bytes().to_vec(),
    }])
    .expect("the provider flag file compiles")
    .with_flagd_form(form);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ctxs = contexts();
    let (mut types, mut metadata, mut answers) = (Map::new(), Map::new(), Map::new());
    let mut defaults = Map::new();
    let fractional: Vec<&str> = snap
        .flagd()
        .flags()
        .iter()
        .filter(|f| f.uses_fractional)
        .map(|f| f.key())
        .collect();
    for flag in snap.flagd().flags() {
        let ty = flag_type(&flag.variants);
        types.insert(flag.key().into(), ty.into());
        let default = flag.default_variant.as_deref();
        defaults.insert(
            flag.key().into(),
            json!({"variant": default, "value": default.and_then(|d| flag.variants.get(d))}),
        );
        metadata.insert(flag.key().into(), Value::Object(flag.metadata.clone()));
        let per_ctx: Vec<Value> = ctxs
            .iter()
            .map(|c| {
                let ctx = c.as_object().unwrap();
                let as_type = |t: &str| match flag.evaluate(ctx, now, form) {
                    Err(_) => answer(None, None, "ERROR", Some("GENERAL")),
                    Ok(o) => match o.value {
                        Some(v) if !fits(v, t) => {
                            answer(None, None, "ERROR", Some("TYPE_MISMATCH"))
                        }
                        _ => answer(o.value, o.variant, o.reason.as_str(), None),
                    },
                };
                json!({"asType": as_type(ty), "asWrongType": as_type(wrong_type(ty))})
            })
            .collect();
        answers.insert(flag.key().into(), per_ctx.into());
    }
    assert!(types.len() >= 10, "the provider flag file lost flags");
    // The bucketing sweep: many units through the split-only flags, for
    // evaluators whose `fractional` may round differently (Java's 32-bit v1).
    let sweep_ctxs: Vec<Value> = (0..SWEEP)
        .map(|i| json!({"targetingKey": format!("sweep-{i}"), "email": format!("s{i}@shop.io")}))
        .collect();
    let mut sweep = Map::new();
    for key in SWEEP_FLAGS {
        let flag = snap.flagd().get(key).expect("a sweep flag of the file");
        let variants: Vec<Value> = sweep_ctxs
            .iter()
            .map(|c| {
                let o = flag.evaluate(c.as_object().unwrap(), now, form).unwrap();
                assert_eq!(
                    o.reason.as_str(),
                    "TARGETING_MATCH",
                    "{key} is a plain split"
                );
                o.variant.into()
            })
            .collect();
        sweep.insert(key.to_string(), variants.into());
    }
    json!({
        "form": format!("{form:?}").to_lowercase(),
        "flags": types,
        "wrongTypes": types.iter().map(|(k, t)| (k.clone(), wrong_type(t.as_str().unwrap()).into())).collect::<Map<String, Value>>(),
        "metadata": metadata,
        "defaults": defaults,
        "fractionalFlags": fractional,
        "contexts": ctxs,
        "answers": answers,
        "sweep": {"contexts": sweep_ctxs, "variants": sweep},
    })
}

/// A `cohortd serve` on a directory holding one flagd file, with the flagd RPC
/// (`--listen`) and sync (`--sync-listen`) listeners on free loopback ports.
/// Killed on drop.
pub struct FlagdServe {
    pub root: tempfile::TempDir,
    pub rpc: SocketAddr,
    pub sync: SocketAddr,
    pub form: FractionalForm,
    child: Child,
}

impl FlagdServe {
    /// Starts cohortd on [`FLAGS`] with `--flagd-fractional form` and waits
    /// (bounded) until both listeners accept.
    pub fn start(form: &str) -> FlagdServe {
        let form_v = FractionalForm::parse(form).expect("v1, v2 or v3");
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("config");
        std::fs::create_dir(&config).unwrap();
        std::fs::write(config.join("flags.json"), FLAGS).unwrap();
        let (rpc, sync) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_cohortd"))
            .arg("serve")
            .arg("--config-dir")
            .arg(&config)
            .args(["--listen", &rpc.to_string()])
            .args(["--sync-listen", &sync.to_string()])
            .args(["--admin-listen", "off", "--ofrep-listen", "off"])
            .args(["--flagd-fractional", form])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut s = FlagdServe {
            root,
            rpc,
            sync,
            form: form_v,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(rpc).is_err() || TcpStream::connect(sync).is_err() {
            assert!(
                s.child.try_wait().unwrap().is_none(),
                "cohortd serve exited early"
            );
            assert!(Instant::now() < deadline, "cohortd serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// The served flag file.
    pub fn file(&self) -> PathBuf {
        self.root.path().join("config/flags.json")
    }

    /// Writes cohortd's offline answers for `flags_text` to `name`.
    pub fn cases(&self, name: &str, flags_text: &str) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, expected(flags_text, self.form).to_string()).unwrap();
        path
    }

    /// Replaces the flag file atomically (write then rename), as a ConfigMap update does.
    pub fn write_flags(&self, text: &str) {
        let tmp = self.root.path().join("flags.json.next");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.file()).unwrap();
    }
}

impl Drop for FlagdServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drives one provider client through the shared exchange: it prints
/// READY-FOR-CHANGE after checking the first answers; the flag file is then
/// rewritten ([`changed_flags`]) and the client told `CHANGED <cases-after>`; it
/// prints OK once it saw the change and the new answers. Panics with the
/// client's stderr on any failure; on success prints that stderr (the clients
/// report how many answers they compared, and any documented deviation).
pub fn drive(srv: &FlagdServe, mut cmd: Command, limit: Duration, what: &str) {
    let mut child = Driven::spawn(
        {
            cmd.arg(srv.cases("cases-before.json", FLAGS));
            cmd
        },
        limit,
    );
    let result = (|| {
        child.expect_line("READY-FOR-CHANGE")?;
        let changed = changed_flags();
        let after = srv.cases("cases-after.json", &changed);
        srv.write_flags(&changed);
        child.send_line(&format!("CHANGED {}", after.display()));
        child.expect_line("OK")
    })();
    if let Err(e) = result {
        panic!("{what}: {e}\nstderr:\n{}", child.abort());
    }
    let (ok, stderr) = child.finish();
    assert!(ok, "{what} failed:\n{stderr}");
    eprintln!("{what}: {}", stderr.trim());
}

/// The directory of this crate's tests.
pub fn tests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
}
