"""Reference values for `cohortd analyze`'s statistics, from SciPy and statsmodels.

Reads a JSON document of cases on stdin (written by tests/analysis_reference.rs)
and writes the reference results as JSON on stdout.
"""
import json
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest


def welch(case):
    c = np.asarray(case["control"], dtype=float)
    t = np.asarray(case["treatment"], dtype=float)
    r = stats.ttest_ind(t, c, equal_var=False)
    ci = r.confidence_interval(confidence_level=1 - case["alpha"])
    return {"statistic": float(r.statistic), "p_value": float(r.pvalue), "df": float(r.df),
            "ci": [float(ci.low), float(ci.high)]}


def ztest(case):
    xc, nc, xt, nt = case["xc"], case["nc"], case["xt"], case["nt"]
    z, p = proportions_ztest([xt, xc], [nt, nc])
    low, high = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff",
                                           alpha=case["alpha"])
    return {"statistic": float(z), "p_value": float(p), "ci": [float(low), float(high)]}


def srm(case):
    counts = np.asarray(case["counts"], dtype=float)
    w = np.asarray(case["weights"], dtype=float)
    chi2, p = stats.chisquare(counts, f_exp=counts.sum() * w / w.sum())
    return {"chi2": float(chi2), "p_value": float(p)}


def corrections(p):
    out = {}
    for name, method in [("bonferroni", "bonferroni"), ("holm", "holm"),
                         ("benjamini_hochberg", "fdr_bh")]:
        out[name] = [float(x) for x in multipletests(p, method=method)[1]]
    return out


def main():
    doc = json.load(sys.stdin)
    json.dump({
        "welch": [welch(c) for c in doc["welch"]],
        "ztest": [ztest(c) for c in doc["ztest"]],
        "srm": [srm(c) for c in doc["srm"]],
        "corrections": [corrections(p) for p in doc["corrections"]],
    }, sys.stdout)


if __name__ == "__main__":
    main()
