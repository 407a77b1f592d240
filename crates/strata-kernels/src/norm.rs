//! RMSNorm / LayerNorm of each row in one pass (kernels/row_norm.cu): x in its own dtype, the
//! math and the scale (and bias) in f32, as transformers computes norms — instead of a cast to
//! f32, candle's norm kernel and a cast back, each a full pass with f32 intermediates.
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};

/// CPU twin of `row_norm`: each row of `x` (row-major, `cols` wide) normalised in f32 —
/// RMSNorm `x / sqrt(mean(x²) + eps) · w`, or with `bias` LayerNorm
/// `(x − mean) / sqrt(var + eps) · w + b` — and stored in x's type. Sums in f64.
pub fn row_norm_cpu<T: WithDType>(x: &[T], weight: &[f32], bias: Option<&[f32]>, eps: f32) -> Vec<T> {
    let cols = weight.len();
    assert!(
        cols > 0 && x.len().is_multiple_of(cols) && bias.is_none_or(|b| b.len() == cols),
        "x is not [rows, {cols}] or the bias is not [{cols}]"
    );
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let v: Vec<f32> = row.iter().map(|x| x.to_f64() as f32).collect();
        let mean = match bias {
            Some(_) => (v.iter().map(|&x| x as f64).sum::<f64>() / cols as f64) as f32,
            None => 0.0,
        };
        let var = v.iter().map(|&x| ((x - mean) as f64).powi(2)).sum::<f64>() / cols as f64;
        let inv = 1.0 / (var as f32 + eps).sqrt();
        out.extend(v.iter().enumerate().map(|(i, &x)| {
            let y = (x - mean) * inv * weight[i] + bias.map_or(0.0, |b| b[i]);
            T::from_f64(y as f64)
        }));
    }
    out
}

/// Norm of the last axis of `x` (f32/bf16/f16) on x's device with f32 `weight` `[d]` and, for
/// LayerNorm, f32 `bias` `[d]`; see [`row_norm_cpu`]. Returns x's shape and dtype.
pub fn row_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    let d = x.dim(candle_core::D::Minus1)?;
    let wrong = |t: &Tensor| t.dims() != [d] || t.dtype() != DType::F32;
    if wrong(weight) || bias.is_some_and(wrong) {
        bail!(
            "row_norm: x {:?} needs an f32 weight (and bias) [{d}], got {:?} {:?}",
            x.dims(),
            weight.dims(),
            weight.dtype()
        );
    }
    if !matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!("row_norm: x must be f32, bf16 or f16, got {:?}", x.dtype());
    }
    let affine = match bias {
        Some(b) => Tensor::stack(&[weight, b], 0)?,
        None => weight.unsqueeze(0)?,
    };
    x.contiguous()?
        .apply_op2_no_bwd(&affine.contiguous()?, &NormOp { eps })
}

struct NormOp {
    eps: f32,
}

impl CustomOp2 for NormOp {
    fn name(&self) -> &'static str {
        "strata-row-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(affine) = s2 else {
            bail!("row_norm: weight and bias must be f32")
        };
        let affine = crate::contiguous(affine, l2, "weight")?;
        let d = l1.dims().last().copied().unwrap_or(0);
        let (weight, bias) = affine.split_at(d);
        let bias = (!bias.is_empty()).then_some(bias);
        let eps = self.eps;
        let out = crate::map_float_storage!(s1, "row_norm", |x| row_norm_cpu(
            crate::contiguous(x, l1, "x")?,
            weight,
            bias,
            eps
        ));
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let out = crate::cuda::row_norm(s1, l1, s2, l2, self.eps)?;
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn data(n: usize, seed: f32) -> Vec<f32> {
        let wave = crate::conformance::wave(n, seed, 3.0);
        wave.into_iter().map(|v| v + 0.5).collect()
    }

    /// The decoder's composite path on the CPU: cast to f32, candle's norm, cast back.
    fn candle_norm(x: &Tensor, w: &Tensor, b: Option<&Tensor>, eps: f32) -> Tensor {
        let x32 = x.to_dtype(DType::F32).unwrap();
        let y = match b {
            Some(b) => candle_nn::ops::layer_norm(&x32, w, b, eps),
            None => candle_nn::ops::rms_norm(&x32, w, eps),
        };
        y.unwrap().to_dtype(x.dtype()).unwrap()
    }

    #[test]
    fn cpu_twin_matches_candle_norms() {
        let (rows, d) = (6, 37);
        let x = Tensor::from_vec(data(rows * d, 0.3), (2, 3, d), &Device::Cpu).unwrap();
        let w = Tensor::from_vec(data(d, 1.1), d, &Device::Cpu).unwrap();
        let b = Tensor::from_vec(data(d, 2.3), d, &Device::Cpu).unwrap();
        for bias in [None, Some(&b)] {
            let got = row_norm(&x, &w, bias, 1e-5).unwrap();
            assert_eq!(got.dims(), [2, 3, d]);
            let diff = crate::testing::max_abs_diff(&got, &candle_norm(&x, &w, bias, 1e-5));
            assert!(diff < 1e-5, "bias {}: max diff {diff}", bias.is_some());
            // bf16 storage: at most one bf16 ulp from the composite path (one rounding each)
            let xb = x.to_dtype(DType::BF16).unwrap();
            let got = row_norm(&xb, &w, bias, 1e-5).unwrap();
            assert_eq!(got.dtype(), DType::BF16);
            let diff = crate::testing::max_abs_diff(&got, &candle_norm(&xb, &w, bias, 1e-5));
            assert!(diff <= 0.05, "bf16 bias {}: max diff {diff}", bias.is_some());
        }
    }

    #[test]
    fn shape_errors() {
        let x = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
        let w5 = Tensor::ones(5, DType::F32, &Device::Cpu).unwrap();
        assert!(row_norm(&x, &w5, None, 1e-6).is_err());
        let w16 = Tensor::ones(4, DType::BF16, &Device::Cpu).unwrap();
        assert!(row_norm(&x, &w16, None, 1e-6).is_err());
        let w = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        assert!(row_norm(&x, &w, Some(&w5), 1e-6).is_err());
        assert!(row_norm(&x, &w, Some(&w), 1e-6).is_ok());
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_row_norm_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_row_norm_matches_cpu_twin") else {
            return;
        };
        crate::conformance::row_norm(|x, w, b, eps| {
            row_norm(&gpu(x)?, &gpu(w)?, b.map(&gpu).transpose()?.as_ref(), eps)
        });
    }
}
