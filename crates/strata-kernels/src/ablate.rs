//! Fused head-selective ablation of per-head attention outputs (kernels/ablate_heads.cu).
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};

/// CPU twin of `ablate_heads`:
/// `out[b, t, h, :] = keep[b, h] · z[b, t, h, :] + (1 − keep[b, h]) · repl[t, h, :]`, computed in
/// f32 and stored in z's type. `z` is `[batch, seq, heads, dh]`, `keep` `[batch, heads]`, `repl`
/// `[seq, heads, dh]` (zeros: zero ablation; per-position means: mean ablation).
pub fn ablate_heads_cpu<T: WithDType>(
    z: &[T],
    keep: &[f32],
    repl: &[T],
    seq: usize,
    heads: usize,
    dh: usize,
) -> Vec<T> {
    let per_b = seq * heads * dh;
    assert!(
        per_b > 0 && z.len().is_multiple_of(per_b),
        "z is not [batch, seq, heads, dh]"
    );
    let batch = z.len() / per_b;
    assert_eq!(keep.len(), batch * heads, "keep is not [batch, heads]");
    assert_eq!(repl.len(), per_b, "repl is not [seq, heads, dh]");
    let mut out = Vec::with_capacity(z.len());
    for b in 0..batch {
        for t in 0..seq {
            for h in 0..heads {
                let k = keep[b * heads + h];
                for j in 0..dh {
                    let i = ((t * heads) + h) * dh + j;
                    let v = k * z[b * per_b + i].to_f64() as f32 + (1.0 - k) * repl[i].to_f64() as f32;
                    out.push(T::from_f64(v as f64));
                }
            }
        }
    }
    out
}

/// Head-selective ablation on z's device: see [`ablate_heads_cpu`]. `keep` is converted to f32,
/// `repl` to z's dtype.
pub fn ablate_heads(z: &Tensor, keep: &Tensor, repl: &Tensor) -> Result<Tensor> {
    let (batch, seq, heads, dh) = z.dims4()?;
    if keep.dims() != [batch, heads] || repl.dims() != [seq, heads, dh] {
        bail!(
            "ablate_heads: z {:?} needs keep [{batch}, {heads}] and repl [{seq}, {heads}, {dh}], got {:?} and {:?}",
            z.dims(),
            keep.dims(),
            repl.dims()
        );
    }
    if !matches!(z.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!("ablate_heads: z must be f32, bf16 or f16, got {:?}", z.dtype());
    }
    let keep = keep.to_dtype(DType::F32)?.contiguous()?;
    let repl = repl.to_dtype(z.dtype())?.contiguous()?;
    z.contiguous()?
        .apply_op3_no_bwd(&keep, &repl, &AblateOp { seq, heads, dh })
}

struct AblateOp {
    seq: usize,
    heads: usize,
    dh: usize,
}

impl CustomOp3 for AblateOp {
    fn name(&self) -> &'static str {
        "strata-ablate-heads"
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
        let CpuStorage::F32(keep) = s2 else {
            bail!("ablate_heads: keep must be f32")
        };
        let keep = crate::contiguous(keep, l2, "keep")?;
        let (s, h, d) = (self.seq, self.heads, self.dh);
        let out = match (s1, s3) {
            (CpuStorage::F32(z), CpuStorage::F32(r)) => CpuStorage::F32(ablate_heads_cpu(
                crate::contiguous(z, l1, "z")?,
                keep,
                crate::contiguous(r, l3, "repl")?,
                s,
                h,
                d,
            )),
            (CpuStorage::BF16(z), CpuStorage::BF16(r)) => CpuStorage::BF16(ablate_heads_cpu(
                crate::contiguous(z, l1, "z")?,
                keep,
                crate::contiguous(r, l3, "repl")?,
                s,
                h,
                d,
            )),
            (CpuStorage::F16(z), CpuStorage::F16(r)) => CpuStorage::F16(ablate_heads_cpu(
                crate::contiguous(z, l1, "z")?,
                keep,
                crate::contiguous(r, l3, "repl")?,
                s,
                h,
                d,
            )),
            (a, b) => bail!("ablate_heads: dtypes {:?} / {:?}", a.dtype(), b.dtype()),
        };
        Ok((out, l1.shape().clone()))
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
        crate::cuda::ablate_heads(s1, l1, s2, l2, s3, l3, self.seq, self.heads, self.dh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    fn data(n: usize, seed: f32) -> Vec<f32> {
        crate::conformance::wave(n, seed, 3.0)
    }

    #[test]
    fn cpu_twin_matches_naive_per_head_masking() {
        let (b, t, h, d) = (2, 3, 4, 5);
        let z = Tensor::from_vec(data(b * t * h * d, 0.1), (b, t, h, d), &Device::Cpu).unwrap();
        let repl = Tensor::from_vec(data(t * h * d, 2.0), (t, h, d), &Device::Cpu).unwrap();
        let keep = vec![1.0f32, 0.0, 1.0, 0.25, 0.0, 0.0, 1.0, 1.0];
        let got = ablate_heads(
            &z,
            &Tensor::from_vec(keep.clone(), (b, h), &Device::Cpu).unwrap(),
            &repl,
        )
        .unwrap();
        // naive: pick per head with tensor indexing
        for bi in 0..b {
            for hi in 0..h {
                let k = keep[bi * h + hi];
                let zz = z.i((bi, .., hi, ..)).unwrap();
                let rr = repl.i((.., hi, ..)).unwrap();
                let want = ((zz * k as f64).unwrap() + (rr * (1.0 - k) as f64).unwrap()).unwrap();
                let diff = crate::testing::max_abs_diff(&got.i((bi, .., hi, ..)).unwrap(), &want);
                assert!(diff < 1e-6, "b {bi} head {hi}");
            }
        }
        // bf16 storage: identical to the twin on the rounded inputs
        let zb = z.to_dtype(DType::BF16).unwrap();
        let rb = repl.to_dtype(DType::BF16).unwrap();
        let got = ablate_heads(
            &zb,
            &Tensor::from_vec(keep.clone(), (b, h), &Device::Cpu).unwrap(),
            &rb,
        )
        .unwrap();
        let zv: Vec<half::bf16> = zb.flatten_all().unwrap().to_vec1().unwrap();
        let rv: Vec<half::bf16> = rb.flatten_all().unwrap().to_vec1().unwrap();
        let want = ablate_heads_cpu(&zv, &keep, &rv, t, h, d);
        assert_eq!(got.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap(), want);
    }

    #[test]
    fn shape_errors() {
        let z = Tensor::zeros((1, 2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let keep = Tensor::ones((1, 2), DType::F32, &Device::Cpu).unwrap();
        let repl = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(ablate_heads(&z, &keep, &repl).is_err());
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_ablate_heads_matches_cpu_twin() {
        let Some(dev) = crate::testing::gpu_device("gpu_ablate_heads_matches_cpu_twin") else {
            return;
        };
        let gpu = |t: &Tensor| t.to_device(&dev);
        crate::conformance::ablate_heads(|z, keep, repl| ablate_heads(&gpu(z)?, &gpu(keep)?, &gpu(repl)?));
    }
}
