//! Logit-lens statistics in one pass over the vocabulary (kernels/lens_stats.cu).
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};

/// Per-row statistics of `softmax(logits[row])`, all in nats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LensRow {
    /// Number of tokens with a strictly larger logit than the target (0 = top-1; ties favour the target).
    pub rank: u32,
    /// Probability of the target token.
    pub prob: f32,
    /// Logit of the target token.
    pub logit: f32,
    /// Entropy of the row's distribution.
    pub entropy: f32,
    /// KL(final ‖ row): the model's output distribution against this row's.
    pub kl: f32,
    /// logsumexp of the row's logits.
    pub logsumexp: f32,
}

/// Columns of [`lens_stats_tensor`]'s output, in order.
pub const LENS_COLUMNS: [&str; 6] = ["rank", "prob", "logit", "entropy", "kl", "logsumexp"];

impl LensRow {
    /// One row of [`lens_stats_tensor`]'s output (columns [`LENS_COLUMNS`]).
    pub fn from_slice(v: &[f32]) -> Self {
        LensRow {
            rank: v[0] as u32,
            prob: v[1],
            logit: v[2],
            entropy: v[3],
            kl: v[4],
            logsumexp: v[5],
        }
    }
    fn to_array(self) -> [f32; 6] {
        [
            self.rank as f32,
            self.prob,
            self.logit,
            self.entropy,
            self.kl,
            self.logsumexp,
        ]
    }
}

fn check_indices(
    rows: usize,
    vocab: usize,
    n_final: usize,
    targets: &[u32],
    final_rows: &[u32],
) -> Result<()> {
    if targets.len() != rows || final_rows.len() != rows {
        bail!(
            "lens_stats: {rows} rows but {} targets and {} final rows",
            targets.len(),
            final_rows.len()
        );
    }
    if let Some(t) = targets.iter().find(|&&t| t as usize >= vocab) {
        bail!("lens_stats: target token {t} is outside the vocabulary ({vocab})");
    }
    if let Some(f) = final_rows.iter().find(|&&f| f as usize >= n_final) {
        bail!("lens_stats: final row {f} is outside final_logp ({n_final} rows)");
    }
    Ok(())
}

/// CPU twin of the `lens_stats` kernel: the same single online pass per row (running max,
/// rescaled sums), accumulated in f64.
///
/// `logits` is `[rows, vocab]` row-major; `final_logp` is `[n_final, vocab]` log-probabilities of
/// the model's output; row `r` is compared with `final_logp[final_rows[r]]` and scored for token
/// `targets[r]`. Panics on out-of-range indices (the tensor API checks them first).
pub fn lens_stats_cpu<T: WithDType>(
    logits: &[T],
    vocab: usize,
    final_logp: &[f32],
    targets: &[u32],
    final_rows: &[u32],
) -> Vec<LensRow> {
    assert!(
        vocab > 0 && logits.len().is_multiple_of(vocab),
        "logits is not [rows, vocab]"
    );
    let rows = logits.len() / vocab;
    check_indices(rows, vocab, final_logp.len() / vocab, targets, final_rows).unwrap();
    (0..rows)
        .map(|r| {
            let z = &logits[r * vocab..(r + 1) * vocab];
            let f0 = final_rows[r] as usize * vocab;
            let lf = &final_logp[f0..f0 + vocab];
            let zt = z[targets[r] as usize].to_f64();
            // m: running max, s = Σ e^{z-m}, t = Σ e^{z-m}(z-m).
            let (mut m, mut s, mut t) = (f64::NEG_INFINITY, 0f64, 0f64);
            let (mut pz, mut ps, mut above) = (0f64, 0f64, 0u32);
            for v in 0..vocab {
                let zv = z[v].to_f64();
                if zv > zt {
                    above += 1;
                }
                if zv != f64::NEG_INFINITY {
                    if s == 0.0 {
                        (m, s, t) = (zv, 1.0, 0.0);
                    } else if zv > m {
                        let e = (m - zv).exp();
                        t = e * (t + s * (m - zv));
                        s = s * e + 1.0;
                        m = zv;
                    } else {
                        let d = zv - m;
                        let e = d.exp();
                        s += e;
                        t += e * d;
                    }
                }
                let l = lf[v] as f64;
                if l != f64::NEG_INFINITY {
                    let p = l.exp();
                    pz += p * (l - zv);
                    ps += p;
                }
            }
            let lse = m + s.ln();
            LensRow {
                rank: above,
                prob: (zt - lse).exp() as f32,
                logit: zt as f32,
                entropy: (s.ln() - t / s) as f32,
                kl: (pz + ps * lse) as f32,
                logsumexp: lse as f32,
            }
        })
        .collect()
}

/// [`lens_stats_tensor`] read back as rows.
pub fn lens_stats(
    logits: &Tensor,
    final_logp: &Tensor,
    targets: &[u32],
    final_rows: &[u32],
) -> Result<Vec<LensRow>> {
    let out = lens_stats_tensor(logits, final_logp, targets, final_rows)?;
    Ok(out
        .to_device(&candle_core::Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?
        .chunks(6)
        .map(LensRow::from_slice)
        .collect())
}

/// Logit-lens statistics of every row of `logits` (`[rows, vocab]`, f32/bf16/f16) on its own
/// device, as a `[rows, 6]` f32 tensor with columns [`LENS_COLUMNS`] (rank stored as f32, exact
/// below 2^24). `final_logp` (`[n_final, vocab]`, converted to f32) holds the model's output
/// log-probabilities (`log_softmax` of the final logits); row `r` is compared with
/// `final_logp[final_rows[r]]` and scored for token `targets[r]`. No `[rows, vocab]` softmax is
/// materialised: one pass per row (one CUDA block per row on the GPU).
pub fn lens_stats_tensor(
    logits: &Tensor,
    final_logp: &Tensor,
    targets: &[u32],
    final_rows: &[u32],
) -> Result<Tensor> {
    let (rows, vocab) = logits.dims2()?;
    let (n_final, v2) = final_logp.dims2()?;
    if v2 != vocab {
        bail!("lens_stats: logits have {vocab} columns, final_logp {v2}");
    }
    check_indices(rows, vocab, n_final, targets, final_rows)?;
    if !matches!(logits.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!(
            "lens_stats: logits must be f32, bf16 or f16, got {:?}",
            logits.dtype()
        );
    }
    let idx: Vec<u32> = targets
        .iter()
        .zip(final_rows)
        .flat_map(|(&t, &f)| [t, f])
        .collect();
    let idx = Tensor::from_vec(idx, (rows, 2), logits.device())?;
    let final_logp = final_logp.to_dtype(DType::F32)?.contiguous()?;
    logits
        .contiguous()?
        .apply_op3_no_bwd(&final_logp, &idx, &LensStatsOp { rows, vocab })
}

struct LensStatsOp {
    rows: usize,
    vocab: usize,
}

impl CustomOp3 for LensStatsOp {
    fn name(&self) -> &'static str {
        "strata-lens-stats"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(fin) = s2 else {
            bail!("lens_stats: final_logp must be f32")
        };
        let CpuStorage::U32(idx) = s3 else {
            bail!("lens_stats: indices must be u32")
        };
        let fin = crate::contiguous(fin, l2, "final_logp")?;
        let idx = crate::contiguous(idx, l3, "indices")?;
        let targets: Vec<u32> = idx.iter().step_by(2).copied().collect();
        let finals: Vec<u32> = idx.iter().skip(1).step_by(2).copied().collect();
        let rows = crate::with_float_slice!(s1, "lens_stats logits", |v| lens_stats_cpu(
            crate::contiguous(v, l1, "logits")?,
            self.vocab,
            fin,
            &targets,
            &finals
        ));
        let out: Vec<f32> = rows.into_iter().flat_map(LensRow::to_array).collect();
        Ok((CpuStorage::F32(out), Shape::from((self.rows, 6))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::lens_stats(s1, l1, s2, l2, s3, l3, self.rows, self.vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{assert_rows_close, lens_case as case, log_softmax_naive, stored_values};
    use candle_core::Device;

    /// The obvious formulas: softmax tensor, rank by sorting, H = -Σ q log q, KL = Σ p (log p - log q).
    fn naive(z: &[f32], lf: &[f32], target: usize) -> LensRow {
        let lq = log_softmax_naive(z);
        let q: Vec<f64> = lq.iter().map(|v| v.exp()).collect();
        let mut sorted: Vec<(usize, f32)> = z.iter().copied().enumerate().collect();
        sorted.sort_by(|a, b| {
            b.1.total_cmp(&a.1).then(if a.0 == target {
                std::cmp::Ordering::Less
            } else if b.0 == target {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            })
        });
        let rank = sorted.iter().position(|&(i, _)| i == target).unwrap() as u32;
        let entropy: f64 = -q
            .iter()
            .zip(&lq)
            .filter(|(p, _)| **p > 0.0)
            .map(|(p, l)| p * l)
            .sum::<f64>();
        let kl: f64 = lf
            .iter()
            .zip(&lq)
            .filter(|(l, _)| l.is_finite())
            .map(|(&l, lqv)| (l as f64).exp() * (l as f64 - lqv))
            .sum();
        let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        LensRow {
            rank,
            prob: q[target] as f32,
            logit: z[target],
            entropy: entropy as f32,
            kl: kl as f32,
            logsumexp: lse as f32,
        }
    }

    fn close(a: f32, b: f32, tol: f32) -> bool {
        a == b || (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn cpu_twin_matches_naive_formulas() {
        let (rows, vocab) = (9, 1000);
        let (z, fin, targets, finals) = case(rows, vocab);
        let got = lens_stats_cpu(&z, vocab, &fin, &targets, &finals);
        let want: Vec<LensRow> = (0..rows)
            .map(|r| {
                let f = finals[r] as usize;
                naive(
                    &z[r * vocab..(r + 1) * vocab],
                    &fin[f * vocab..(f + 1) * vocab],
                    targets[r] as usize,
                )
            })
            .collect();
        assert_rows_close(&got, &want, 1e-5, "cpu twin vs naive");
        // the row compared with its own distribution has KL 0
        let lf0: Vec<f32> = log_softmax_naive(&z[..vocab])
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let own = lens_stats_cpu(&z[..vocab], vocab, &lf0, &[1], &[0]);
        assert!(own[0].kl.abs() < 1e-5, "KL(p || p) = {}", own[0].kl);
    }

    #[test]
    fn cpu_twin_handles_peaked_and_flat_rows() {
        let vocab = 50_000;
        let flat = vec![0.25f32; vocab];
        let mut peaked = vec![-30f32; vocab];
        peaked[123] = 40.0;
        let z: Vec<f32> = flat.iter().chain(&peaked).copied().collect();
        let lf: Vec<f32> = log_softmax_naive(&flat).into_iter().map(|v| v as f32).collect();
        let r = lens_stats_cpu(&z, vocab, &lf, &[7, 123], &[0, 0]);
        assert_eq!(r[0].rank, 0, "ties never push the target down");
        assert!(close(r[0].entropy, (vocab as f32).ln(), 1e-6));
        assert!(close(r[0].prob, 1.0 / vocab as f32, 1e-6));
        assert!(r[0].kl.abs() < 1e-6);
        assert_eq!(r[1].rank, 0);
        assert!(
            r[1].entropy.abs() < 1e-20,
            "entropy of a one-hot row: {}",
            r[1].entropy
        );
        assert!(close(r[1].prob, 1.0, 1e-6));
        let want = naive(&peaked, &lf, 123).kl;
        assert!(close(r[1].kl, want, 1e-5), "{} vs {want}", r[1].kl);
    }

    #[test]
    fn tensor_api_on_cpu_matches_twin_for_every_dtype() {
        let (rows, vocab) = (6, 777);
        let (z, fin, targets, finals) = case(rows, vocab);
        let zt = Tensor::from_vec(z.clone(), (rows, vocab), &Device::Cpu).unwrap();
        let ft = Tensor::from_vec(fin.clone(), (2, vocab), &Device::Cpu).unwrap();
        let want = lens_stats_cpu(&z, vocab, &fin, &targets, &finals);
        let got = lens_stats(&zt, &ft, &targets, &finals).unwrap();
        assert_rows_close(&got, &want, 1e-6, "tensor f32");
        for dt in [DType::BF16, DType::F16] {
            let zd = zt.to_dtype(dt).unwrap();
            let want = lens_stats_cpu(&stored_values(&zd), vocab, &fin, &targets, &finals);
            let got = lens_stats(&zd, &ft, &targets, &finals).unwrap();
            assert_rows_close(&got, &want, 1e-6, &format!("tensor {dt:?}"));
        }
        // a transposed (non-contiguous) input is made contiguous first
        let zt2 = Tensor::from_vec(z.clone(), (vocab, rows), &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        assert_eq!(lens_stats(&zt2, &ft, &targets, &finals).unwrap().len(), rows);
    }

    #[test]
    fn bad_indices_are_errors() {
        let zt = Tensor::zeros((2, 10), DType::F32, &Device::Cpu).unwrap();
        let ft = Tensor::zeros((1, 10), DType::F32, &Device::Cpu).unwrap();
        let e = lens_stats(&zt, &ft, &[0, 10], &[0, 0]).unwrap_err().to_string();
        assert!(e.contains("outside the vocabulary"), "{e}");
        let e = lens_stats(&zt, &ft, &[0, 1], &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("outside final_logp"), "{e}");
        let e = lens_stats(&zt, &ft, &[0], &[0]).unwrap_err().to_string();
        assert!(e.contains("2 rows"), "{e}");
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_lens_stats_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_lens_stats_matches_cpu_twin") else {
            return;
        };
        crate::conformance::lens_stats(|z, fin, targets, finals| {
            lens_stats(&gpu(z)?, &gpu(fin)?, targets, finals)
        });
    }
}
