//! Multiple-comparison corrections as adjusted p-values, the same numbers as
//! `statsmodels.stats.multitest.multipletests` (`bonferroni`, `holm`,
//! `fdr_bh`): a hypothesis is rejected when its adjusted p-value is below alpha.

use crate::config::Correction;

/// Adjusted p-values, in the order given.
pub fn adjust(p: &[f64], method: Correction) -> Vec<f64> {
    let m = p.len() as f64;
    match method {
        Correction::None => p.to_vec(),
        Correction::Bonferroni => p.iter().map(|x| (x * m).min(1.0)).collect(),
        Correction::Holm => {
            // Step-down: the i-th smallest times (m - i), made non-decreasing.
            let order = sorted(p);
            let mut out = vec![0.0; p.len()];
            let mut running: f64 = 0.0;
            for (rank, &i) in order.iter().enumerate() {
                running = running.max((p[i] * (m - rank as f64)).min(1.0));
                out[i] = running;
            }
            out
        }
        Correction::BenjaminiHochberg => {
            // Step-up: the i-th smallest times m / i, made non-increasing from the top.
            let order = sorted(p);
            let mut out = vec![0.0; p.len()];
            let mut running: f64 = 1.0;
            for (rank, &i) in order.iter().enumerate().rev() {
                running = running.min(p[i] * m / (rank as f64 + 1.0));
                out[i] = running.min(1.0);
            }
            out
        }
    }
}

fn sorted(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_is_between_none_and_bonferroni_and_bh_is_at_most_holm() {
        let p = [0.01, 0.04, 0.03, 0.2];
        let none = adjust(&p, Correction::None);
        let bonf = adjust(&p, Correction::Bonferroni);
        let holm = adjust(&p, Correction::Holm);
        let bh = adjust(&p, Correction::BenjaminiHochberg);
        for i in 0..p.len() {
            assert!(none[i] <= holm[i] && holm[i] <= bonf[i]);
            assert!(bh[i] <= holm[i]);
        }
        assert_eq!(bonf[3], 0.8);
        assert_eq!(holm[0], 0.04);
    }
}
