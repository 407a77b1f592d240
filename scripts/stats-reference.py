#!/usr/bin/env python3
"""Reference statistics for strata-dataset, computed with numpy / scipy / scikit-learn on the
bundled dataset, written to tests/fixtures/dataset/ (small CSV / JSON files that are committed).

Run through scripts/stats-reference.sh (creates the Python venv when missing).

Definitions mirror crates/strata-dataset (see its docs), implemented here independently:
- describe: np.mean, scipy.stats.mode (smallest most frequent), np.quantile (linear), np.max,
  scipy.stats.skew (bias=True), scipy.stats.kurtosis (fisher=True, bias=True), miss rate over rows;
- correlations: scipy.stats.pearsonr / spearmanr / kendalltau (tau-b, method='auto'), pairwise-complete;
  partial: OLS residuals on [1, log10(params_b)] (numpy.linalg.lstsq), Pearson r, p from t(n-3);
  Benjamini-Hochberg: scipy.stats.false_discovery_control(method='bh') over all pairs of a method;
- random forest: sklearn RandomForestRegressor(n_estimators=300, max_features=1.0, bootstrap=True,
  min_samples_leaf=1, random_state=seed) for seeds 0..4; features = numeric structure + arch_class as
  an ordinal code (distinct classes of the rows used, byte-sorted); rows with target and all features
  present, in file order; folds: PredefinedSplit(test_fold = row index % 5); CV R^2 = mean of the
  folds' r2 (cross_val_score); impurity importance = feature_importances_ of a fit on all rows,
  averaged over seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import PredefinedSplit, cross_val_score

ROOT = Path(__file__).resolve().parent.parent
STRUCTURE = ["params_b", "d_model", "d_ffn", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab_size", "context_length"]
V1 = ["arc_c", "hellaswag", "winogrande", "truthfulqa", "gsm8k", "mmlu"]
V2 = ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]
NUMERIC = STRUCTURE + ["gated_mlp", "n_experts"] + V1 + V2
N_TREES, N_FOLDS, SEEDS = 300, 5, [0, 1, 2, 3, 4]


def num(s: str) -> float:
    s = s.strip()
    if s == "":
        return math.nan
    if s.lower() in ("true", "false"):
        return 1.0 if s.lower() == "true" else 0.0
    return float(s)


def g(x: float) -> str:
    return repr(float(x))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, default=ROOT / "data/structure_performance.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/dataset")
    ap.add_argument("--no-forest", action="store_true", help="skip the random-forest references (slow)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.dataset, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    col = {c: np.array([num(r[c]) for r in rows]) for c in NUMERIC}

    # describe
    with open(args.out / "describe.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["column", "n", "mean", "mode", "q1", "q2", "q3", "max", "skewness", "kurtosis", "miss_rate"])
        for c in NUMERIC:
            v = col[c]
            x = v[~np.isnan(v)]
            w.writerow([
                c, len(x), g(np.mean(x)), g(stats.mode(x, keepdims=False).mode),
                g(np.quantile(x, 0.25)), g(np.quantile(x, 0.5)), g(np.quantile(x, 0.75)), g(np.max(x)),
                g(stats.skew(x)), g(stats.kurtosis(x)), g(np.isnan(v).mean()),
            ])

    # correlations
    logp = np.log10(col["params_b"])
    out = []
    for feat in STRUCTURE:
        for b in V1 + V2:
            m = ~np.isnan(col[feat]) & ~np.isnan(col[b])
            x, y = col[feat][m], col[b][m]
            pr = stats.pearsonr(x, y)
            sr = stats.spearmanr(x, y)
            kt = stats.kendalltau(x, y)
            out.append([feat, b, "pearson", len(x), float(pr.statistic), float(pr.pvalue)])
            out.append([feat, b, "spearman", len(x), float(sr.statistic), float(sr.pvalue)])
            out.append([feat, b, "kendall", len(x), float(kt.statistic), float(kt.pvalue)])
            if feat != "params_b":
                mm = m & ~np.isnan(logp)
                x, y, z = col[feat][mm], col[b][mm], logp[mm]
                A = np.column_stack([np.ones_like(z), z])
                rx = x - A @ np.linalg.lstsq(A, x, rcond=None)[0]
                ry = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
                r = float(np.corrcoef(rx, ry)[0, 1])
                n = len(x)
                t = r * math.sqrt((n - 3) / (1 - r * r))
                p = float(2 * stats.t.sf(abs(t), n - 3))
                out.append([feat, b, "partial_pearson", n, r, p])
    for method in ("pearson", "spearman", "kendall", "partial_pearson"):
        idx = [i for i, o in enumerate(out) if o[2] == method]
        adj = stats.false_discovery_control([out[i][5] for i in idx], method="bh")
        for i, a in zip(idx, adj):
            out[i].append(float(a))
    with open(args.out / "correlations.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["feature", "benchmark", "method", "n", "r", "p", "p_bh"])
        for o in out:
            w.writerow([o[0], o[1], o[2], o[3], g(o[4]), g(o[5]), g(o[6])])

    # small hand-made cases: exact Kendall (n <= 33, no ties), ties, tiny n, BH with ties
    cases = {
        "a": ([3.1, 1.2, 4.4, 1.5, 5.9, 2.6, 5.3, 5.8, 9.7, 7.9, 3.2, 8.4], [2.7, 1.8, 2.8, 1.1, 8.2, 8.4, 5.9, 0.4, 5.2, 3.5, 3.6, 0.7]),
        "b": ([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 3, 6, 5, 8, 7]),
        "ties": ([1, 1, 2, 2, 3, 3, 3, 4, 5, 5], [10, 9, 9, 8, 7, 7, 6, 6, 5, 1]),
        "c": ([0.5, 2.5, 1.0, 4.0, 3.5], [1.0, 3.0, 2.0, 3.5, 5.0]),
    }
    small = {"correlations": {}, "describe": {}}
    for k, (x, y) in cases.items():
        x, y = np.array(x, float), np.array(y, float)
        small["correlations"][k] = {
            "x": x.tolist(), "y": y.tolist(),
            "pearson": [float(v) for v in stats.pearsonr(x, y)],
            "spearman": [float(v) for v in stats.spearmanr(x, y)],
            "kendall": [float(v) for v in stats.kendalltau(x, y)],
        }
        small["describe"][k] = {
            "x": x.tolist(), "mean": float(np.mean(x)), "mode": float(stats.mode(x, keepdims=False).mode),
            "q1": float(np.quantile(x, 0.25)), "q2": float(np.quantile(x, 0.5)), "q3": float(np.quantile(x, 0.75)),
            "skewness": float(stats.skew(x)), "kurtosis": float(stats.kurtosis(x)),
        }
    ps = [0.01, 0.04, 0.04, 0.2, 0.03, 0.5, 0.001, 0.9]
    small["bh"] = {"p": ps, "adjusted": [float(v) for v in stats.false_discovery_control(ps, method="bh")]}
    with open(args.out / "small.json", "w") as f:
        json.dump(small, f, indent=1, sort_keys=True)
        f.write("\n")

    # random forest
    if args.no_forest:
        return 0
    forest = {}
    for b in V1 + V2:
        idx = [i for i, r in enumerate(rows) if not math.isnan(col[b][i])
               and all(not math.isnan(col[c][i]) for c in STRUCTURE) and r["arch_class"] != ""]
        classes = sorted({rows[i]["arch_class"] for i in idx}, key=lambda s: s.encode())
        X = np.array([[col[c][i] for c in STRUCTURE] + [classes.index(rows[i]["arch_class"])] for i in idx])
        y = np.array([col[b][i] for i in idx])
        feats = STRUCTURE + ["arch_class"]
        split = PredefinedSplit(np.arange(len(idx)) % N_FOLDS)
        r2s, imps = [], []
        for s in SEEDS:
            rf = RandomForestRegressor(n_estimators=N_TREES, max_features=1.0, bootstrap=True, min_samples_leaf=1, random_state=s, n_jobs=-1)
            r2s.append(float(np.mean(cross_val_score(rf, X, y, cv=split, scoring="r2"))))
            imps.append(rf.fit(X, y).feature_importances_)
        imp = np.mean(imps, axis=0)
        order = np.argsort(-imp)
        forest[b] = {
            "n": len(idx),
            "cv_r2_mean": float(np.mean(r2s)),
            "cv_r2_per_seed": r2s,
            "impurity_importance": {feats[j]: float(imp[j]) for j in range(len(feats))},
            "top_feature": feats[order[0]],
            "second_feature": feats[order[1]],
        }
    meta = {
        "generated_by": "scripts/stats-reference.py",
        "numpy": np.__version__, "scipy": scipy.__version__, "scikit_learn": sklearn.__version__,
        "n_trees": N_TREES, "n_folds": N_FOLDS, "seeds": SEEDS, "max_features": 1.0,
        "rows": len(rows),
    }
    with open(args.out / "forest.json", "w") as f:
        json.dump({"meta": meta, "benchmarks": forest}, f, indent=1, sort_keys=True)
        f.write("\n")
    for b, v in forest.items():
        print(f"{b:12s} n={v['n']:4d} cv_r2={v['cv_r2_mean']:.3f} top={v['top_feature']} ({v['impurity_importance'][v['top_feature']]:.3f}) second={v['second_feature']} ({v['impurity_importance'][v['second_feature']]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
