//! Generates an analysis workload for `benches/analysis.sh`: a config directory
//! with one experiment (conversion primary, continuous secondary, a guardrail)
//! and exposure + outcome events, as OTLP Collector lines (batches of 100 log
//! records, as the `file` exporter writes them) or flat JSON lines.
//!
//!   cargo run --release --example analysis_events -- --out DIR \
//!       [--units 200000] [--exposures 1000000] [--outcomes 1000000] [--format otlp|flat]

use std::io::{BufWriter, Write};
use std::path::PathBuf;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CONFIG: &str = "experiments:\n  - key: checkout\n    status: running\n    variants: [control, treatment]\n    metrics:\n      primary: {name: purchase, type: conversion}\n      secondary: [{name: revenue, type: continuous}]\n      guardrails: [{name: error_rate, threshold: 0.01}]\n    evaluation: {alpha: 0.05, correction: holm}\n";

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(arg(&args, "--out", "analysis-bench"));
    let units: u64 = arg(&args, "--units", "200000").parse().expect("--units");
    let exposures: u64 = arg(&args, "--exposures", "1000000")
        .parse()
        .expect("--exposures");
    let outcomes: u64 = arg(&args, "--outcomes", "1000000")
        .parse()
        .expect("--outcomes");
    let otlp = arg(&args, "--format", "otlp") == "otlp";
    std::fs::create_dir_all(out.join("config"))?;
    std::fs::write(out.join("config/experiments.yaml"), CONFIG)?;
    let snap = cohortd::Snapshot::load(&out.join("config")).expect("config");
    let fp = snap
        .experiment("checkout")
        .expect("experiment")
        .salt_fingerprint
        .to_string();
    let path = out.join(if otlp { "events.json" } else { "events.jsonl" });
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut rng = Rng(1);
    let start: u64 = 1_793_577_600_000_000_000;
    let variant = |u: u64| if u % 2 == 0 { "control" } else { "treatment" };
    let mut batch: Vec<String> = Vec::with_capacity(100);
    let flush = |w: &mut BufWriter<std::fs::File>,
                 batch: &mut Vec<String>|
     -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        writeln!(
            w,
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cohortd"}}}}]}},"scopeLogs":[{{"scope":{{"name":"cohortd"}},"logRecords":[{}]}}]}}]}}"#,
            batch.join(",")
        )?;
        batch.clear();
        Ok(())
    };
    for i in 0..exposures {
        let u = i % units;
        let t = start + i * 1_000_000 + rng.below(1000);
        let v = variant(u);
        if otlp {
            batch.push(format!(
                r#"{{"timeUnixNano":"{t}","eventName":"feature_flag.evaluation","attributes":[{{"key":"feature_flag.key","value":{{"stringValue":"checkout"}}}},{{"key":"feature_flag.result.variant","value":{{"stringValue":"{v}"}}}},{{"key":"feature_flag.result.reason","value":{{"stringValue":"split"}}}},{{"key":"feature_flag.context.id","value":{{"stringValue":"user-{u}"}}}},{{"key":"feature_flag.version","value":{{"stringValue":"{ver}"}}}},{{"key":"feature_flag.provider.name","value":{{"stringValue":"cohortd"}}}},{{"key":"cohortd.exposure.id","value":{{"stringValue":"{i:032x}"}}}},{{"key":"cohortd.salt_fingerprint","value":{{"stringValue":"{fp}"}}}},{{"key":"cohortd.epoch","value":{{"intValue":"0"}}}},{{"key":"cohortd.source","value":{{"stringValue":"assign"}}}}]}}"#,
                ver = snap.version()
            ));
            if batch.len() == 100 {
                flush(&mut w, &mut batch)?;
            }
        } else {
            writeln!(
                w,
                r#"{{"type":"exposure","time":{t},"unit":"user-{u}","experiment":"checkout","variant":"{v}","epoch":0,"salt_fingerprint":"{fp}"}}"#
            )?;
        }
    }
    flush(&mut w, &mut batch)?;
    for i in 0..outcomes {
        let u = rng.below(units);
        let t = start + exposures * 1_000_000 + i * 1_000;
        let (metric, value) = match rng.below(10) {
            0..=4 => ("purchase", 1.0),
            5..=8 => ("revenue", (rng.below(10_000) as f64) / 100.0),
            _ => ("error_rate", 1.0),
        };
        if otlp {
            batch.push(format!(
                r#"{{"timeUnixNano":"{t}","eventName":"cohortd.outcome","attributes":[{{"key":"cohortd.outcome.metric","value":{{"stringValue":"{metric}"}}}},{{"key":"cohortd.outcome.value","value":{{"doubleValue":{value}}}}},{{"key":"cohortd.outcome.event_id","value":{{"stringValue":"o{i}"}}}},{{"key":"feature_flag.context.id","value":{{"stringValue":"user-{u}"}}}}]}}"#
            ));
            if batch.len() == 100 {
                flush(&mut w, &mut batch)?;
            }
        } else {
            writeln!(
                w,
                r#"{{"type":"outcome","time":{t},"unit":"user-{u}","metric":"{metric}","value":{value},"event_id":"o{i}"}}"#
            )?;
        }
    }
    flush(&mut w, &mut batch)?;
    w.flush()?;
    eprintln!(
        "wrote {} and {}",
        out.join("config").display(),
        path.display()
    );
    Ok(())
}
