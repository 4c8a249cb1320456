//! Tests of a variant against control, from sufficient statistics.
//!
//! * Conversion metrics: the two-proportion z-test with the pooled variance for
//!   the p-value (as `statsmodels.stats.proportion.proportions_ztest`), and the
//!   unpooled Wald interval for the difference (as
//!   `confint_proportions_2indep(method="wald")`).
//! * Continuous metrics: Welch's t-test, Student t with Welch-Satterthwaite
//!   degrees of freedom (as `scipy.stats.ttest_ind(equal_var=False)`), and its
//!   interval for the difference of means.
//! * Relative lift `mean_t / mean_c - 1`: a normal interval with the delta-method
//!   variance `var_t / mean_c^2 + mean_t^2 var_c / mean_c^4` (variances of the means).
//!
//! All functions are pure and return `None` when the test is undefined (too few
//! units, zero variance, zero control mean for the relative lift).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Units, sum and sum of squares of one group's per-unit values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Group {
    /// Units.
    pub n: f64,
    /// Sum of per-unit values.
    pub sum: f64,
    /// Sum of squared per-unit values.
    pub sum_sq: f64,
}

impl Group {
    /// Mean of the per-unit values.
    pub fn mean(&self) -> f64 {
        self.sum / self.n
    }
    /// Sample variance (n - 1 denominator), never negative.
    pub fn variance(&self) -> f64 {
        let m = self.mean();
        ((self.sum_sq - self.sum * m) / (self.n - 1.0)).max(0.0)
    }
}

/// The result of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// Control mean (conversion rate for conversion metrics).
    pub control_mean: f64,
    /// Treatment mean.
    pub treatment_mean: f64,
    /// Test statistic (z or t).
    pub statistic: f64,
    /// Degrees of freedom (t-test), infinite for the z-test.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// treatment - control.
    pub abs_lift: f64,
    /// Its confidence interval.
    pub abs_ci: (f64, f64),
    /// treatment / control - 1 (`None` when the control mean is 0).
    pub rel_lift: Option<f64>,
    /// Its delta-method interval.
    pub rel_ci: Option<(f64, f64)>,
    /// Standard error of the absolute difference (unpooled).
    pub se: f64,
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// The two-sided critical value of the standard normal for `alpha`.
pub fn z_crit(alpha: f64) -> f64 {
    std_normal().inverse_cdf(1.0 - alpha / 2.0)
}

fn relative(
    c: &Group,
    t: &Group,
    var_c_mean: f64,
    var_t_mean: f64,
    alpha: f64,
) -> (Option<f64>, Option<(f64, f64)>) {
    let (mc, mt) = (c.mean(), t.mean());
    if mc == 0.0 {
        return (None, None);
    }
    let rel = mt / mc - 1.0;
    let var = var_t_mean / (mc * mc) + mt * mt * var_c_mean / (mc * mc * mc * mc);
    let h = z_crit(alpha) * var.sqrt();
    (Some(rel), Some((rel - h, rel + h)))
}

/// Two-proportion z-test; `sum` is the number of converted units.
pub fn two_proportion(c: &Group, t: &Group, alpha: f64) -> Option<Comparison> {
    if c.n < 1.0 || t.n < 1.0 {
        return None;
    }
    let (pc, pt) = (c.mean(), t.mean());
    let pooled = (c.sum + t.sum) / (c.n + t.n);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / c.n + 1.0 / t.n)).sqrt();
    if se0 == 0.0 || !se0.is_finite() {
        return None;
    }
    let z = (pt - pc) / se0;
    let p = 2.0 * std_normal().sf(z.abs());
    let (vc, vt) = (pc * (1.0 - pc) / c.n, pt * (1.0 - pt) / t.n);
    let se = (vc + vt).sqrt();
    let h = z_crit(alpha) * se;
    let d = pt - pc;
    let (rel_lift, rel_ci) = relative(c, t, vc, vt, alpha);
    Some(Comparison {
        control_mean: pc,
        treatment_mean: pt,
        statistic: z,
        df: f64::INFINITY,
        p_value: p,
        abs_lift: d,
        abs_ci: (d - h, d + h),
        rel_lift,
        rel_ci,
        se,
    })
}

/// Welch's t-test of the means.
pub fn welch(c: &Group, t: &Group, alpha: f64) -> Option<Comparison> {
    if c.n < 2.0 || t.n < 2.0 {
        return None;
    }
    let (vc, vt) = (c.variance() / c.n, t.variance() / t.n);
    let se = (vc + vt).sqrt();
    if se == 0.0 || !se.is_finite() {
        return None;
    }
    let d = t.mean() - c.mean();
    let stat = d / se;
    let df = (vc + vt).powi(2) / (vc * vc / (c.n - 1.0) + vt * vt / (t.n - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = 2.0 * dist.sf(stat.abs());
    let h = dist.inverse_cdf(1.0 - alpha / 2.0) * se;
    let (rel_lift, rel_ci) = relative(c, t, vc, vt, alpha);
    // The same result shape as `two_proportion`, filled by a different test.
    Some(Comparison {
        control_mean: c.mean(),
        treatment_mean: t.mean(),
        statistic: stat,
        df,
        p_value: p,
        abs_lift: d,
        abs_ci: (d - h, d + h),
        rel_lift,
        rel_ci,
        se,
    })
}

/// The minimum detectable absolute effect with `power` at two-sided `alpha`,
/// for groups of the given sizes and per-unit standard deviation `sd`.
pub fn mde(sd: f64, n_control: f64, n_treatment: f64, alpha: f64, power: f64) -> Option<f64> {
    if n_control < 1.0 || n_treatment < 1.0 || !sd.is_finite() {
        return None;
    }
    let z_power = std_normal().inverse_cdf(power);
    Some((z_crit(alpha) + z_power) * sd * (1.0 / n_control + 1.0 / n_treatment).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(values: &[f64]) -> Group {
        Group {
            n: values.len() as f64,
            sum: values.iter().sum(),
            sum_sq: values.iter().map(|x| x * x).sum(),
        }
    }

    #[test]
    fn a_larger_treatment_mean_gives_a_positive_lift_and_a_small_p() {
        let c = g(&[1.0, 2.0, 3.0, 2.0, 1.0, 2.0]);
        let t = g(&[4.0, 5.0, 6.0, 5.0, 4.0, 5.0]);
        let r = welch(&c, &t, 0.05).unwrap();
        assert!(r.abs_lift > 2.9 && r.abs_lift < 3.1);
        assert!(r.p_value < 0.001);
        assert!(r.abs_ci.0 > 0.0);
        assert!(welch(&g(&[1.0, 1.0]), &g(&[1.0, 1.0]), 0.05).is_none());
    }

    #[test]
    fn identical_conversion_rates_are_not_significant() {
        let c = Group {
            n: 1000.0,
            sum: 100.0,
            sum_sq: 100.0,
        };
        let r = two_proportion(&c, &c, 0.05).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert!((r.p_value - 1.0).abs() < 1e-12);
    }
}
