//! The report: the terminal table and the `--json` document.

use std::fmt::Write as _;

use super::cohort::Unmatched;
use super::evaluate::{ExperimentReport, MetricResult};
use super::input::InputStats;

/// Everything one run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The analysed config's version.
    pub config_version: String,
    /// What was read (absent for `--stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<InputStats>,
    /// Records that matched nothing (absent for `--stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<Unmatched>,
    /// One per analysed experiment.
    pub experiments: Vec<ExperimentReport>,
    /// Some experiment has a rollback condition that holds.
    pub rollback_recommended: bool,
}

fn num(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e6) {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

fn row(r: &MetricResult) -> Vec<String> {
    let mut cells = vec![
        r.metric.clone(),
        format!("{:?}", r.role).to_lowercase(),
        r.variant.clone(),
        format!("{}/{}", r.units.0, r.units.1),
    ];
    match &r.comparison {
        Some(c) => {
            cells.push(format!(
                "{} -> {}",
                num(c.control_mean),
                num(c.treatment_mean)
            ));
            cells.push(format!(
                "{} [{}, {}]",
                num(c.abs_lift),
                num(c.abs_ci.0),
                num(c.abs_ci.1)
            ));
            cells.push(match (c.rel_lift, c.rel_ci) {
                (Some(l), Some((a, b))) => format!("{} [{}, {}]", pct(l), pct(a), pct(b)),
                _ => "-".to_owned(),
            });
            cells.push(num(c.p_value));
        }
        None => cells.extend(["undefined".into(), "-".into(), "-".into(), "-".into()]),
    }
    cells.push(r.adjusted_p.map_or("-".to_owned(), num));
    let mut verdict = String::new();
    if r.significant {
        verdict.push_str("significant");
    }
    if let Some(g) = r.guardrail {
        verdict.push_str(if g.breached { "BREACHED" } else { "ok" });
        let _ = write!(
            verdict,
            " (bound {} vs {})",
            num(g.degradation_bound),
            num(g.threshold)
        );
    }
    cells.push(verdict);
    cells
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

impl Report {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(i) = &self.input {
            let _ = writeln!(
                out,
                "read {} file(s): {} exposures, {} outcomes, {} other records, {} without a unit id, {} bad lines",
                i.files, i.exposures, i.outcomes, i.other_records, i.without_unit, i.bad_lines
            );
            for b in &i.bad_examples {
                let _ = writeln!(out, "  bad line {b}");
            }
        }
        if let Some(u) = &self.unmatched {
            if u.exposures_unknown_experiment + u.outcomes_unknown_metric + u.duplicate_outcomes > 0
            {
                let _ = writeln!(
                    out,
                    "not used: {} exposures of experiments not in the config, {} outcomes of undeclared metrics, {} duplicate outcome event ids",
                    u.exposures_unknown_experiment, u.outcomes_unknown_metric, u.duplicate_outcomes
                );
            }
        }
        for e in &self.experiments {
            let _ = writeln!(
                out,
                "\n== {} (control {}, alpha {}, correction {:?}, look {} of {}: alpha at this look {})",
                e.experiment,
                e.control,
                e.alpha,
                e.correction,
                e.look.number,
                e.look.planned,
                num(e.look.nominal_alpha)
            );
            let _ = writeln!(out, "decision: {}", e.decision);
            let i = &e.integrity;
            let _ = writeln!(
                out,
                "1 integrity{}: {} units analysed, {} crossed over ({:.2}%), {} in several epochs/salts, {} foreign exposures, {} units only in foreign exposures, {} exposures of unknown variants, {} from other config versions",
                if i.flagged { " FLAGGED" } else { "" },
                i.counts.units,
                i.counts.crossed_over,
                i.crossed_over_fraction * 100.0,
                i.counts.multi_cohort,
                i.counts.foreign_exposures,
                i.counts.foreign_only_units,
                i.counts.unknown_variant_exposures,
                i.counts.other_version_exposures
            );
            for t in &e.srm {
                let _ = writeln!(
                    out,
                    "2 srm{}: units {:?} vs weights {:?}: {}",
                    t.stratum
                        .as_deref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default(),
                    t.units,
                    e.weights,
                    match (t.chi2, t.p_value) {
                        (Some(c), Some(p)) => format!(
                            "chi2 {} p {}{}",
                            num(c),
                            num(p),
                            if t.mismatch { " MISMATCH" } else { " ok" }
                        ),
                        _ => "not tested (too few units)".to_owned(),
                    }
                );
            }
            let _ = writeln!(
                out,
                "3 join: {} outcomes before first exposure and {} of unexposed units not counted",
                i.counts.outcomes_before_exposure, i.counts.outcomes_unexposed
            );
            if !e.results.is_empty() {
                let mut rows = vec![[
                    "metric",
                    "role",
                    "variant",
                    "units c/t",
                    "mean c -> t",
                    "abs lift [CI]",
                    "rel lift [CI]",
                    "p",
                    "adj p",
                    "verdict",
                ]
                .map(String::from)
                .to_vec()];
                rows.extend(e.results.iter().map(row));
                table(&mut out, &rows);
            }
            if !e.rollback.is_empty() {
                let names: Vec<String> = e
                    .rollback
                    .iter()
                    .map(|c| {
                        serde_json::to_value(c)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default()
                    })
                    .collect();
                let _ = writeln!(out, "ROLLBACK RECOMMENDED: {}", names.join(", "));
            }
            for n in &e.notes {
                let _ = writeln!(out, "note: {n}");
            }
        }
        out
    }
}
