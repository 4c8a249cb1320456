//! The shared kit of the `cohortd analyze` tests: a seeded generator, writers
//! for the input formats, config directories, and running the binary.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small seeded generator (SplitMix64): reproducible populations without a
/// dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
    /// A standard normal draw (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Nanoseconds of `day` days plus `secs` seconds after 2026-11-02T00:00:00Z (a Monday).
pub fn at(day: u64, secs: u64) -> u64 {
    const MONDAY: u64 = 1_793_577_600;
    (MONDAY + day * 86_400 + secs) * 1_000_000_000
}

/// One exposure, as a flat JSON line.
#[allow(clippy::too_many_arguments)]
pub fn exposure(
    time: u64,
    unit: &str,
    exp: &str,
    variant: &str,
    epoch: u32,
    salt_fp: &str,
) -> String {
    serde_json::json!({
        "type": "exposure", "time": time, "unit": unit, "experiment": exp,
        "variant": variant, "epoch": epoch, "salt_fingerprint": salt_fp,
    })
    .to_string()
}

/// One outcome, as a flat JSON line.
pub fn outcome(time: u64, unit: &str, metric: &str, value: f64, event_id: &str) -> String {
    serde_json::json!({
        "type": "outcome", "time": time, "unit": unit, "metric": metric,
        "value": value, "event_id": event_id,
    })
    .to_string()
}

/// Writes lines to a file.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// A config directory holding one YAML file.
pub fn config_dir(root: &Path, yaml: &str) -> PathBuf {
    let dir = root.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("experiments.yaml"), yaml).unwrap();
    dir
}

/// The salt fingerprint the analysed config gives `experiment`.
pub fn salt_fingerprint(config: &Path, experiment: &str) -> String {
    let snap = cohortd::Snapshot::load(config).unwrap();
    snap.experiment(experiment)
        .unwrap()
        .salt_fingerprint
        .to_string()
}

/// Runs `cohortd analyze` with `args` (the ledger defaults into `root`).
pub fn analyze(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohortd"));
    cmd.arg("analyze")
        .env_remove("COHORTD_CONFIG_DIR")
        .env("COHORTD_LOOK_LEDGER", root.join("looks.json"))
        .args(args);
    cmd.output().unwrap()
}

/// `analyze --json` output, parsed; panics with stderr on a non-JSON answer.
pub fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The Python interpreter of the project venv (`COHORTD_PYTHON`, or `.venv`).
/// `None` (the test skips, saying so) outside CI when neither exists.
pub fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    match std::env::var_os("COHORTD_PYTHON") {
        Some(p) => Some(p.into()),
        None if venv.exists() => Some(venv),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("COHORTD_PYTHON is unset in CI: run the suite with `bash .ci/test.sh`")
        }
        None => {
            eprintln!("skipping: no COHORTD_PYTHON and no .venv (run `bash .ci/setup-python.sh`)");
            None
        }
    }
}

/// A script under tests/python.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// A flat JSON exposure or outcome line rewritten as one OTLP Collector line
/// (a `resourceLogs` export request holding that one log record).
pub fn to_otlp(flat: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(flat).unwrap();
    let s = |x: &serde_json::Value| serde_json::json!({"stringValue": x.as_str().unwrap()});
    let mut attrs =
        vec![serde_json::json!({"key": "feature_flag.context.id", "value": s(&v["unit"])})];
    let name = if v["type"] == "exposure" {
        attrs.push(serde_json::json!({"key": "feature_flag.key", "value": s(&v["experiment"])}));
        attrs.push(
            serde_json::json!({"key": "feature_flag.result.variant", "value": s(&v["variant"])}),
        );
        attrs.push(serde_json::json!({"key": "cohortd.salt_fingerprint", "value": s(&v["salt_fingerprint"])}));
        attrs.push(serde_json::json!({"key": "cohortd.epoch", "value": {"intValue": v["epoch"].to_string()}}));
        if v["stratum"].is_string() {
            attrs.push(serde_json::json!({"key": "cohortd.stratum", "value": s(&v["stratum"])}));
        }
        "feature_flag.evaluation"
    } else {
        attrs.push(serde_json::json!({"key": "cohortd.outcome.metric", "value": s(&v["metric"])}));
        attrs.push(serde_json::json!({"key": "cohortd.outcome.value", "value": {"doubleValue": v["value"]}}));
        attrs.push(
            serde_json::json!({"key": "cohortd.outcome.event_id", "value": s(&v["event_id"])}),
        );
        "cohortd.outcome"
    };
    serde_json::json!({"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"scope": {"name": "cohortd"},
        "logRecords": [{"timeUnixNano": v["time"].to_string(), "eventName": name, "attributes": attrs}]}]}]})
    .to_string()
}

/// Flat JSON lines rewritten as CSV with the documented header.
pub fn to_csv(flat: &[String]) -> String {
    let cols = cohortd::analysis::flat::COLUMNS;
    let mut out = cols.join(",") + "\n";
    for l in flat {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match &v[*c] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        out += &(cells.join(",") + "\n");
    }
    out
}

/// A two-variant conversion population: `n` units per variant exposed on day 0,
/// converting with the given rates; also `errors` outcomes on an `error_rate` metric.
pub fn population(
    rng: &mut Rng,
    fp: &str,
    exp: &str,
    units: [usize; 2],
    rates: [f64; 2],
    error_rates: [f64; 2],
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut event = 0;
    for (v, variant) in ["control", "treatment"].iter().enumerate() {
        for i in 0..units[v] {
            let unit = format!("{variant}-{i}");
            let t = at(0, rng.next_u64() % 86_000);
            lines.push(exposure(t, &unit, exp, variant, 0, fp));
            if rng.chance(rates[v]) {
                event += 1;
                lines.push(outcome(
                    t + 1_000_000_000,
                    &unit,
                    "purchase",
                    1.0,
                    &format!("p{event}"),
                ));
            }
            if rng.chance(error_rates[v]) {
                event += 1;
                lines.push(outcome(
                    t + 2_000_000_000,
                    &unit,
                    "error_rate",
                    1.0,
                    &format!("x{event}"),
                ));
            }
        }
    }
    lines
}
