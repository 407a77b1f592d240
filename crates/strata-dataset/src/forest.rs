//! Random-forest regression, written to follow scikit-learn's `RandomForestRegressor`
//! (squared-error CART trees grown to purity, bootstrap samples of n rows drawn with replacement,
//! `max_features` candidate features per split drawn without replacement, thresholds at midpoints
//! between consecutive distinct values, impurity importances as the weighted impurity decrease
//! normalised per tree).
//!
//! Why by hand: the maintained Rust forests (smartcore, linfa) do not expose impurity importances
//! of a regression forest nor let the caller evaluate a tree on modified inputs without refitting
//! the whole pipeline; both are needed here and the tree is ~200 lines. It is checked against
//! scikit-learn's cross-validated R² and top-ranked feature by the fixtures in
//! `tests/fixtures/dataset/`. Random numbers: ChaCha8 seeded per forest and tree, so results are
//! reproducible (they are not the same draws as numpy's, hence "within 0.05" rather than equal).

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct ForestParams {
    pub n_trees: usize,
    /// Candidate features per split; `None` = all (scikit-learn's regressor default, 1.0).
    pub max_features: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_depth: Option<usize>,
    pub bootstrap: bool,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 300,
            max_features: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_depth: None,
            bootstrap: true,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        let mut k = 0;
        loop {
            match &self.nodes[k] {
                Node::Leaf(v) => return *v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    k = if row[*feature] <= *threshold {
                        *left
                    } else {
                        *right
                    };
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Forest {
    pub trees: Vec<Tree>,
    /// Mean decrease in impurity per feature (normalised per tree, averaged, sums to 1).
    pub impurity_importance: Vec<f64>,
    pub n_features: usize,
}

struct Builder<'a> {
    x: &'a [Vec<f64>],
    y: &'a [f64],
    p: &'a ForestParams,
    n_feat: usize,
    nodes: Vec<Node>,
    importance: Vec<f64>,
}

impl Builder<'_> {
    /// Grow a node over `idx` (row indices, repeated for bootstrap weight); returns its index.
    fn grow(&mut self, idx: &mut [usize], depth: usize, rng: &mut ChaCha8Rng) -> usize {
        let n = idx.len() as f64;
        let sum: f64 = idx.iter().map(|&i| self.y[i]).sum();
        let sum2: f64 = idx.iter().map(|&i| self.y[i] * self.y[i]).sum();
        let mean = sum / n;
        let impurity = (sum2 / n - mean * mean).max(0.0);
        let me = self.nodes.len();
        self.nodes.push(Node::Leaf(mean));
        let distinct_rows = {
            let mut d: Vec<usize> = idx.to_vec();
            d.sort_unstable();
            d.dedup();
            d.len()
        };
        if distinct_rows < self.p.min_samples_split
            || impurity <= 1e-12 * (1.0 + mean * mean)
            || self.p.max_depth.is_some_and(|d| depth >= d)
        {
            return me;
        }
        let k = self.p.max_features.unwrap_or(self.n_feat).clamp(1, self.n_feat);
        // candidate features in random order (sklearn draws them without replacement and keeps
        // drawing past constant ones; with k = all features the order only breaks ties)
        let feats = sample(rng, self.n_feat, self.n_feat).into_vec();
        let mut best: Option<(f64, usize, f64)> = None; // (proxy improvement, feature, threshold)
        let mut visited = 0;
        let mut order: Vec<usize> = idx.to_vec();
        for &f in &feats {
            if visited >= k {
                break;
            }
            order.sort_by(|&a, &b| self.x[a][f].total_cmp(&self.x[b][f]));
            let lo = self.x[order[0]][f];
            let hi = self.x[order[order.len() - 1]][f];
            if lo == hi {
                continue; // constant here: does not count against max_features (as sklearn)
            }
            visited += 1;
            let (mut ls, mut ln) = (0.0, 0usize);
            for s in 0..order.len() - 1 {
                let yi = self.y[order[s]];
                ls += yi;
                ln += 1;
                let (a, b) = (self.x[order[s]][f], self.x[order[s + 1]][f]);
                if a == b {
                    continue;
                }
                let rn = order.len() - ln;
                if ln < self.p.min_samples_leaf || rn < self.p.min_samples_leaf {
                    continue;
                }
                let rs = sum - ls;
                // maximise sum_l²/n_l + sum_r²/n_r (sklearn's proxy improvement)
                let proxy = ls * ls / ln as f64 + rs * rs / rn as f64;
                if best.is_none_or(|(bp, _, _)| proxy > bp) {
                    let mut thr = a / 2.0 + b / 2.0;
                    if thr == b || !thr.is_finite() {
                        thr = a;
                    }
                    best = Some((proxy, f, thr));
                }
            }
        }
        let Some((_, f, thr)) = best else { return me };
        let mut left: Vec<usize> = idx.iter().copied().filter(|&i| self.x[i][f] <= thr).collect();
        let mut right: Vec<usize> = idx.iter().copied().filter(|&i| self.x[i][f] > thr).collect();
        let imp = |v: &[usize]| -> f64 {
            let n = v.len() as f64;
            let s: f64 = v.iter().map(|&i| self.y[i]).sum();
            let s2: f64 = v.iter().map(|&i| self.y[i] * self.y[i]).sum();
            (s2 / n - (s / n) * (s / n)).max(0.0)
        };
        let decrease = n * impurity - left.len() as f64 * imp(&left) - right.len() as f64 * imp(&right);
        self.importance[f] += decrease.max(0.0);
        let l = self.grow(&mut left, depth + 1, rng);
        let r = self.grow(&mut right, depth + 1, rng);
        self.nodes[me] = Node::Split {
            feature: f,
            threshold: thr,
            left: l,
            right: r,
        };
        me
    }
}

impl Forest {
    /// Fit on rows `x` (all of the same length) and targets `y`.
    pub fn fit(x: &[Vec<f64>], y: &[f64], p: &ForestParams) -> Forest {
        assert_eq!(x.len(), y.len());
        assert!(!x.is_empty(), "empty training set");
        let n = x.len();
        let n_feat = x[0].len();
        let mut master = ChaCha8Rng::seed_from_u64(p.seed);
        let mut trees = Vec::with_capacity(p.n_trees);
        let mut total_imp = vec![0.0; n_feat];
        let mut counted = 0usize;
        for _ in 0..p.n_trees {
            let mut rng = ChaCha8Rng::seed_from_u64(master.random());
            let mut idx: Vec<usize> = if p.bootstrap {
                (0..n).map(|_| rng.random_range(0..n)).collect()
            } else {
                (0..n).collect()
            };
            let mut b = Builder {
                x,
                y,
                p,
                n_feat,
                nodes: Vec::new(),
                importance: vec![0.0; n_feat],
            };
            b.grow(&mut idx, 0, &mut rng);
            let s: f64 = b.importance.iter().sum();
            if s > 0.0 {
                for (t, v) in total_imp.iter_mut().zip(&b.importance) {
                    *t += v / s;
                }
                counted += 1;
            }
            trees.push(Tree { nodes: b.nodes });
        }
        let s: f64 = total_imp.iter().sum();
        if counted > 0 && s > 0.0 {
            for t in total_imp.iter_mut() {
                *t /= s;
            }
        }
        Forest {
            trees,
            impurity_importance: total_imp,
            n_features: n_feat,
        }
    }

    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.trees.iter().map(|t| t.predict_row(row)).sum::<f64>() / self.trees.len() as f64
    }

    pub fn predict(&self, x: &[Vec<f64>]) -> Vec<f64> {
        x.iter().map(|r| self.predict_row(r)).collect()
    }
}

/// Coefficient of determination (`sklearn.metrics.r2_score`).
pub fn r2_score(y: &[f64], pred: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - m) * (v - m)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}
