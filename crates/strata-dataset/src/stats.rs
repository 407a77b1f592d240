//! Descriptive statistics and correlations, defined as scipy defines them (scipy 1.17):
//!
//! - quantile: numpy's default `linear` method, `h = (n-1)p`, interpolate between the order
//!   statistics around `h` (= pandas `Series.quantile`);
//! - mode: the smallest of the most frequent values (`scipy.stats.mode`);
//! - skewness: `scipy.stats.skew(bias=True)` = m3 / m2^1.5 with population central moments;
//! - kurtosis: `scipy.stats.kurtosis(fisher=True, bias=True)` = m4 / m2² − 3 (excess kurtosis);
//! - Pearson r with the two-sided p-value of `scipy.stats.pearsonr` (exact for normal data:
//!   Student t with n−2 degrees of freedom, equivalently the beta distribution scipy uses);
//! - Spearman ρ (Pearson r of average ranks) with `scipy.stats.spearmanr`'s t-based p-value;
//! - Kendall τ-b with `scipy.stats.kendalltau`'s p-value (`method='auto'`: the exact null
//!   distribution when there are no ties and n ≤ 33, or either count is ≤ 1, else the normal
//!   approximation with scipy's tie-corrected variance);
//! - Benjamini–Hochberg adjusted p-values (`scipy.stats.false_discovery_control(method='bh')`);
//! - partial correlation of x and y given covariates: Pearson r of the OLS residuals, p-value from
//!   Student t with n − 2 − k degrees of freedom (k covariates), as pingouin's `partial_corr`;
//! - percentile bootstrap confidence intervals over resampled rows with a seeded ChaCha8 RNG.
//!
//! Every result carries the n it rests on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The paper's descriptive-statistics row (Column | Mean | Mode | Q1 | Q2 | Q3 | Max | Skewness |
/// Kurtosis | Miss Rate), plus the n of non-missing values.
#[derive(Debug, Clone, PartialEq)]
pub struct Describe {
    pub n: usize,
    pub n_total: usize,
    pub mean: f64,
    pub mode: f64,
    pub q1: f64,
    pub q2: f64,
    pub q3: f64,
    pub min: f64,
    pub max: f64,
    pub skewness: f64,
    pub kurtosis: f64,
    pub miss_rate: f64,
}

/// Describe a column with missing values (`None`). With no value present every statistic is NaN.
pub fn describe(values: &[Option<f64>]) -> Describe {
    let x: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let n_total = values.len();
    let miss_rate = if n_total == 0 {
        f64::NAN
    } else {
        (n_total - x.len()) as f64 / n_total as f64
    };
    if x.is_empty() {
        let nan = f64::NAN;
        return Describe {
            n: 0,
            n_total,
            mean: nan,
            mode: nan,
            q1: nan,
            q2: nan,
            q3: nan,
            min: nan,
            max: nan,
            skewness: nan,
            kurtosis: nan,
            miss_rate,
        };
    }
    let mut s = x.clone();
    s.sort_by(|a, b| a.total_cmp(b));
    Describe {
        n: x.len(),
        n_total,
        mean: mean(&x),
        mode: mode_sorted(&s),
        q1: quantile_sorted(&s, 0.25),
        q2: quantile_sorted(&s, 0.5),
        q3: quantile_sorted(&s, 0.75),
        min: s[0],
        max: s[s.len() - 1],
        skewness: skewness(&x),
        kurtosis: kurtosis(&x),
        miss_rate,
    }
}

pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// numpy's default (`linear`) quantile of sorted data.
pub fn quantile_sorted(s: &[f64], p: f64) -> f64 {
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let t = h - lo as f64;
    let (a, b) = (s[lo], s[hi]);
    // numpy's _lerp: symmetric form for t >= 0.5
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

fn mode_sorted(s: &[f64]) -> f64 {
    let (mut best, mut best_n) = (s[0], 0usize);
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if j - i > best_n {
            best_n = j - i;
            best = s[i];
        }
        i = j;
    }
    best
}

fn central_moments(x: &[f64]) -> (f64, f64, f64) {
    let m = mean(x);
    let n = x.len() as f64;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &v in x {
        let d = v - m;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    (m2 / n, m3 / n, m4 / n)
}

/// `scipy.stats.skew(x)` (bias=True).
pub fn skewness(x: &[f64]) -> f64 {
    let (m2, m3, _) = central_moments(x);
    if m2 == 0.0 {
        return f64::NAN;
    }
    m3 / m2.powf(1.5)
}

/// `scipy.stats.kurtosis(x)` (fisher=True, bias=True).
pub fn kurtosis(x: &[f64]) -> f64 {
    let (m2, _, m4) = central_moments(x);
    if m2 == 0.0 {
        return f64::NAN;
    }
    m4 / (m2 * m2) - 3.0
}

/// A correlation coefficient with its two-sided p-value and n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corr {
    pub r: f64,
    pub p: f64,
    pub n: usize,
}

/// Pairwise-complete observations of two columns.
pub fn complete_pairs(x: &[Option<f64>], y: &[Option<f64>]) -> (Vec<f64>, Vec<f64>) {
    x.iter()
        .zip(y)
        .filter_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some((*a, *b)),
            _ => None,
        })
        .unzip()
}

fn pearson_r(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Two-sided p-value of a correlation r under H0 from Student t with `df` degrees of freedom.
fn t_pvalue(r: f64, df: f64) -> f64 {
    if !r.is_finite() || df <= 0.0 {
        return f64::NAN;
    }
    if r.abs() >= 1.0 {
        return 0.0;
    }
    let t = r * (df / ((1.0 - r) * (1.0 + r))).sqrt();
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    (2.0 * dist.cdf(-t.abs())).min(1.0)
}

/// `scipy.stats.pearsonr(x, y)`.
pub fn pearson(x: &[f64], y: &[f64]) -> Corr {
    let n = x.len();
    if n < 3 {
        return Corr {
            r: f64::NAN,
            p: f64::NAN,
            n,
        };
    }
    let r = pearson_r(x, y);
    Corr {
        r,
        p: t_pvalue(r, n as f64 - 2.0),
        n,
    }
}

/// Average ranks (1-based), as `scipy.stats.rankdata(method='average')`.
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// `scipy.stats.spearmanr(x, y)`.
pub fn spearman(x: &[f64], y: &[f64]) -> Corr {
    let n = x.len();
    if n < 3 {
        return Corr {
            r: f64::NAN,
            p: f64::NAN,
            n,
        };
    }
    let r = pearson_r(&rank_average(x), &rank_average(y));
    Corr {
        r,
        p: t_pvalue(r, n as f64 - 2.0),
        n,
    }
}

/// `scipy.stats.kendalltau(x, y)` (tau-b, `method='auto'`, two-sided).
pub fn kendall(x: &[f64], y: &[f64]) -> Corr {
    let n = x.len();
    if n < 2 {
        return Corr {
            r: f64::NAN,
            p: f64::NAN,
            n,
        };
    }
    let (mut con_minus_dis, mut dis) = (0i64, 0i64);
    for i in 0..n {
        for j in (i + 1)..n {
            let s = (x[i] - x[j]).signum() * (y[i] - y[j]).signum();
            let s = if x[i] == x[j] || y[i] == y[j] { 0.0 } else { s };
            if s > 0.0 {
                con_minus_dis += 1;
            } else if s < 0.0 {
                con_minus_dis -= 1;
                dis += 1;
            }
        }
    }
    let ties = |v: &[f64]| -> (f64, f64, f64) {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let (mut t0, mut t1, mut t2) = (0.0, 0.0, 0.0);
        let mut i = 0;
        while i < s.len() {
            let mut j = i;
            while j < s.len() && s[j] == s[i] {
                j += 1;
            }
            let c = (j - i) as f64;
            t0 += c * (c - 1.0) / 2.0;
            t1 += c * (c - 1.0) * (c - 2.0);
            t2 += c * (c - 1.0) * (2.0 * c + 5.0);
            i = j;
        }
        (t0, t1, t2)
    };
    let (xtie, x0, x1) = ties(x);
    let (ytie, y0, y1) = ties(y);
    let nf = n as f64;
    let tot = nf * (nf - 1.0) / 2.0;
    if xtie == tot || ytie == tot {
        return Corr {
            r: f64::NAN,
            p: f64::NAN,
            n,
        };
    }
    let cmd = con_minus_dis as f64;
    let tau = (cmd / (tot - xtie).sqrt() / (tot - ytie).sqrt()).clamp(-1.0, 1.0);
    let dis = dis as f64;
    let p = if xtie == 0.0 && ytie == 0.0 && (n <= 33 || dis.min(tot - dis) <= 1.0) {
        kendall_p_exact(n, dis.min(tot - dis) as u64)
    } else {
        let m = nf * (nf - 1.0);
        let var = (m * (2.0 * nf + 5.0) - x1 - y1) / 18.0
            + (2.0 * xtie * ytie) / m
            + x0 * y0 / (9.0 * m * (nf - 2.0));
        let z = cmd / var.sqrt();
        let normal = Normal::new(0.0, 1.0).expect("standard normal");
        (2.0 * normal.cdf(-z.abs())).min(1.0)
    };
    Corr { r: tau, p, n }
}

/// scipy's `_kendall_p_exact` (two-sided), `c` = min(discordant, total − discordant).
fn kendall_p_exact(n: usize, c: u64) -> f64 {
    let nn = n as u64;
    if n <= 2 {
        return 1.0;
    }
    let fact = |k: usize| -> f64 { (1..=k).map(|v| v as f64).product() };
    if c == 0 {
        return if n < 171 { 2.0 / fact(n) } else { 0.0 };
    }
    if c == 1 {
        return if n < 172 { 2.0 / fact(n - 1) } else { 0.0 };
    }
    if 4 * c == nn * (nn - 1) {
        return 1.0;
    }
    if n >= 171 {
        return f64::NAN; // never reached: the exact path is used only for n <= 33 or c <= 1
    }
    let c = c as usize;
    let mut new = vec![0.0f64; c + 1];
    new[0] = 1.0;
    new[1] = 1.0;
    for j in 3..=n {
        let mut acc = 0.0;
        for v in new.iter_mut() {
            acc += *v;
            *v = acc;
        }
        if j <= c {
            let prev = new.clone();
            for k in j..=c {
                new[k] -= prev[k - j];
            }
        }
    }
    (2.0 * new.iter().sum::<f64>() / fact(n)).min(1.0)
}

/// Benjamini–Hochberg adjusted p-values (NaN stays NaN and is not counted in m).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    if m == 0 {
        return out;
    }
    let mut order = idx.clone();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        let adj = p[i] * m as f64 / (rank + 1) as f64;
        running = running.min(adj);
        out[i] = running.min(1.0);
    }
    out
}

/// Pearson r of x and y after removing (OLS, with intercept) the linear effect of `covariates`,
/// each given row-aligned with x and y; p-value from t with n − 2 − k degrees of freedom.
pub fn partial(x: &[f64], y: &[f64], covariates: &[&[f64]]) -> Corr {
    let n = x.len();
    let k = covariates.len();
    if n < k + 3 {
        return Corr {
            r: f64::NAN,
            p: f64::NAN,
            n,
        };
    }
    let rx = residualise(x, covariates);
    let ry = residualise(y, covariates);
    let r = pearson_r(&rx, &ry);
    Corr {
        r,
        p: t_pvalue(r, (n - 2 - k) as f64),
        n,
    }
}

/// Residuals of the OLS regression of `y` on `[1, covariates...]` (normal equations solved by
/// Gaussian elimination with partial pivoting; fine for the handful of covariates used here).
#[allow(clippy::needless_range_loop)] // small dense matrix code reads best indexed
pub fn residualise(y: &[f64], covariates: &[&[f64]]) -> Vec<f64> {
    let n = y.len();
    let p = covariates.len() + 1;
    let col = |j: usize, i: usize| if j == 0 { 1.0 } else { covariates[j - 1][i] };
    let mut a = vec![vec![0.0; p + 1]; p];
    for r in 0..p {
        for c in 0..p {
            a[r][c] = (0..n).map(|i| col(r, i) * col(c, i)).sum();
        }
        a[r][p] = (0..n).map(|i| col(r, i) * y[i]).sum();
    }
    for c in 0..p {
        let piv = (c..p)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        let d = a[c][c];
        if d.abs() < 1e-300 {
            continue;
        }
        for r in 0..p {
            if r != c {
                let f = a[r][c] / d;
                for k in c..=p {
                    a[r][k] -= f * a[c][k];
                }
            }
        }
    }
    let beta: Vec<f64> = (0..p)
        .map(|c| {
            if a[c][c].abs() < 1e-300 {
                0.0
            } else {
                a[c][p] / a[c][c]
            }
        })
        .collect();
    (0..n)
        .map(|i| y[i] - (0..p).map(|j| beta[j] * col(j, i)).sum::<f64>())
        .collect()
}

/// Percentile bootstrap confidence interval of a statistic of paired data: `b` resamples of the
/// rows with replacement (ChaCha8 seeded with `seed`), resamples giving NaN are dropped; returns
/// (lo, hi) at `level` (e.g. 0.95) using the linear quantile, or NaNs when fewer than 10 resamples
/// are usable.
pub fn bootstrap_ci(
    x: &[f64],
    y: &[f64],
    stat: impl Fn(&[f64], &[f64]) -> f64,
    b: usize,
    level: f64,
    seed: u64,
) -> (f64, f64) {
    let n = x.len();
    if n < 3 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bx = vec![0.0; n];
    let mut by = vec![0.0; n];
    let mut stats = Vec::with_capacity(b);
    for _ in 0..b {
        for k in 0..n {
            let i = rng.random_range(0..n);
            bx[k] = x[i];
            by[k] = y[i];
        }
        let s = stat(&bx, &by);
        if s.is_finite() {
            stats.push(s);
        }
    }
    if stats.len() < 10 {
        return (f64::NAN, f64::NAN);
    }
    stats.sort_by(|a, b| a.total_cmp(b));
    let alpha = (1.0 - level) / 2.0;
    (
        quantile_sorted(&stats, alpha),
        quantile_sorted(&stats, 1.0 - alpha),
    )
}

/// Which coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pearson,
    Spearman,
    Kendall,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Pearson => "pearson",
            Method::Spearman => "spearman",
            Method::Kendall => "kendall",
        }
    }

    pub fn compute(self, x: &[f64], y: &[f64]) -> Corr {
        match self {
            Method::Pearson => pearson(x, y),
            Method::Spearman => spearman(x, y),
            Method::Kendall => kendall(x, y),
        }
    }
}
