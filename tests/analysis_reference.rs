//! Every statistic of `cohortd analyze` against SciPy and statsmodels (the
//! project venv; tests/python/check_analysis_stats.py): Welch's t-test and its
//! interval, the two-proportion z-test and its Wald interval, the chi-square
//! SRM test, and the Bonferroni, Holm and Benjamini-Hochberg adjustments, all
//! to 1e-9 relative. (O'Brien-Fleming boundaries are checked against published
//! tables in src/analysis/spending.rs.)

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use cohortd::analysis::correction::adjust;
use cohortd::analysis::stats::{two_proportion, welch, Group};
use cohortd::config::Correction;
use serde_json::{json, Value};
use support::rng::Rng;
use support::runners::{python, script};

fn group(v: &[f64]) -> Group {
    Group {
        n: v.len() as f64,
        sum: v.iter().sum(),
        sum_sq: v.iter().map(|x| x * x).sum(),
    }
}

#[track_caller]
fn close(ours: f64, theirs: &Value, what: &str) {
    let theirs = theirs
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: reference is {theirs}"));
    let tol = 1e-9 * theirs.abs().max(1e-300);
    assert!(
        (ours - theirs).abs() <= tol,
        "{what}: ours {ours:e}, reference {theirs:e} (relative {:e})",
        ((ours - theirs) / theirs).abs()
    );
}

#[test]
fn statistics_agree_with_scipy_and_statsmodels() {
    let Some(python) = python() else { return };
    let mut rng = Rng::new(42);
    // Welch: unequal sizes and variances, skewed (revenue-like) and plain normal values.
    let mut welch_cases = Vec::new();
    for (nc, nt, mc, mt, sc, st, skew) in [
        (50usize, 80usize, 10.0, 11.0, 2.0, 5.0, false),
        (1000, 1200, 3.0, 3.1, 1.0, 1.2, false),
        (400, 350, 1.0, 1.3, 1.0, 1.0, true),
        (12, 9, 0.5, 0.2, 0.3, 0.1, false),
    ] {
        let draw = |rng: &mut Rng, n: usize, m: f64, s: f64| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    let z = rng.normal();
                    if skew {
                        (m.ln() + s * z).exp()
                    } else {
                        m + s * z
                    }
                })
                .collect()
        };
        let c = draw(&mut rng, nc, mc, sc);
        let t = draw(&mut rng, nt, mt, st);
        welch_cases.push(json!({"control": c, "treatment": t, "alpha": 0.05}));
    }
    let z_cases = [
        (5000u64, 500u64, 5100u64, 560u64, 0.05),
        (200, 30, 180, 20, 0.01),
        (100_000, 2_000, 100_000, 2_150, 0.1),
    ];
    let z_json: Vec<Value> = z_cases
        .iter()
        .map(|&(nc, xc, nt, xt, alpha)| json!({"nc": nc, "xc": xc, "nt": nt, "xt": xt, "alpha": alpha}))
        .collect();
    let srm_cases = [
        (vec![5000u64, 5100], vec![1.0, 1.0]),
        (vec![2980, 7020], vec![3.0, 7.0]),
        (vec![100, 120, 95], vec![1.0, 1.0, 1.0]),
    ];
    let srm_json: Vec<Value> = srm_cases
        .iter()
        .map(|(c, w)| json!({"counts": c, "weights": w}))
        .collect();
    let p_sets = vec![
        vec![0.01, 0.04, 0.03, 0.2],
        vec![0.001, 0.5, 0.049, 0.049, 0.9, 0.0001],
        vec![0.3],
    ];
    let doc =
        json!({"welch": welch_cases, "ztest": z_json, "srm": srm_json, "corrections": p_sets});

    let mut child = Command::new(python)
        .arg(script("check_analysis_stats.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();

    for (i, case) in doc["welch"].as_array().unwrap().iter().enumerate() {
        let values = |k: &str| -> Vec<f64> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let r = welch(
            &group(&values("control")),
            &group(&values("treatment")),
            0.05,
        )
        .unwrap();
        let want = &reference["welch"][i];
        close(r.statistic, &want["statistic"], &format!("welch {i} t"));
        close(r.p_value, &want["p_value"], &format!("welch {i} p"));
        close(r.df, &want["df"], &format!("welch {i} df"));
        close(r.abs_ci.0, &want["ci"][0], &format!("welch {i} ci low"));
        close(r.abs_ci.1, &want["ci"][1], &format!("welch {i} ci high"));
    }
    for (i, &(nc, xc, nt, xt, alpha)) in z_cases.iter().enumerate() {
        let c = Group {
            n: nc as f64,
            sum: xc as f64,
            sum_sq: xc as f64,
        };
        let t = Group {
            n: nt as f64,
            sum: xt as f64,
            sum_sq: xt as f64,
        };
        let r = two_proportion(&c, &t, alpha).unwrap();
        let want = &reference["ztest"][i];
        close(r.statistic, &want["statistic"], &format!("z {i} statistic"));
        close(r.p_value, &want["p_value"], &format!("z {i} p"));
        close(r.abs_ci.0, &want["ci"][0], &format!("z {i} ci low"));
        close(r.abs_ci.1, &want["ci"][1], &format!("z {i} ci high"));
    }
    for (i, (counts, weights)) in srm_cases.iter().enumerate() {
        let (chi2, p) = cohortd::exposure::srm::chi_square(counts, weights, 0.0).unwrap();
        close(chi2, &reference["srm"][i]["chi2"], &format!("srm {i} chi2"));
        close(p, &reference["srm"][i]["p_value"], &format!("srm {i} p"));
    }
    for (i, p) in p_sets.iter().enumerate() {
        for (name, method) in [
            ("bonferroni", Correction::Bonferroni),
            ("holm", Correction::Holm),
            ("benjamini_hochberg", Correction::BenjaminiHochberg),
        ] {
            let ours = adjust(p, method);
            for (k, x) in ours.iter().enumerate() {
                close(
                    *x,
                    &reference["corrections"][i][name][k],
                    &format!("{name} set {i} #{k}"),
                );
            }
        }
    }
}
