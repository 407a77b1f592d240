//! Gated MLP activation `act(gate) * up` straight from the fused gate|up projection
//! (kernels/gated_act.cu): one pass instead of strided copies, the activation and the product.
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};

/// The gate's activation, as candle defines it (`gelu` is candle's tanh approximation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatedAct {
    Silu = 0,
    GeluTanh = 1,
    GeluErf = 2,
    Relu = 3,
}

impl GatedAct {
    /// Every activation, in the kernel's numbering.
    pub const ALL: [GatedAct; 4] = [
        GatedAct::Silu,
        GatedAct::GeluTanh,
        GatedAct::GeluErf,
        GatedAct::Relu,
    ];

    /// f32 formulas of candle's CUDA kernels (kernels/gated_act.cu has the same).
    fn apply(self, x: f32) -> f32 {
        match self {
            GatedAct::Silu => x / (1.0 + (-x).exp()),
            GatedAct::GeluTanh => {
                let alpha = x + 0.044715 * (x * x * x);
                0.5 * x
                    * (1.0
                        + (std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2 * alpha).tanh())
            }
            GatedAct::GeluErf => {
                0.5 * x * (1.0 + candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
            }
            GatedAct::Relu => x.max(0.0),
        }
    }
}

/// CPU twin of `gated_act`: `out[r, j] = act(x[r, j]) · x[r, m + j]` for `x` row-major
/// `[rows, 2m]`, computed in f32 and stored in x's type.
pub fn gated_act_cpu<T: WithDType>(x: &[T], m: usize, act: GatedAct) -> Vec<T> {
    assert!(m > 0 && x.len().is_multiple_of(2 * m), "x is not [rows, 2m]");
    let mut out = Vec::with_capacity(x.len() / 2);
    for row in x.chunks(2 * m) {
        for j in 0..m {
            let (g, u) = (row[j].to_f64() as f32, row[m + j].to_f64() as f32);
            out.push(T::from_f64((act.apply(g) * u) as f64));
        }
    }
    out
}

/// `act(gate) * up` on x's device, where `x` (`[.., 2m]`, f32/bf16/f16) holds gate in the first
/// half of its last axis and up in the second; returns `[.., m]`. See [`gated_act_cpu`].
pub fn gated_act(x: &Tensor, act: GatedAct) -> Result<Tensor> {
    let two_m = x.dim(candle_core::D::Minus1)?;
    if two_m == 0 || two_m % 2 != 0 {
        bail!("gated_act: last axis of {:?} is not gate|up", x.dims());
    }
    if !matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!("gated_act: x must be f32, bf16 or f16, got {:?}", x.dtype());
    }
    x.contiguous()?.apply_op1_no_bwd(&GatedOp { m: two_m / 2, act })
}

/// Outputs per thread of `kernels/gated_act.cu` for gate|up rows of `2 m` elements starting
/// `offset` elements into their storage (see `vector_width`).
pub fn gated_act_vector_width(dtype: DType, m: usize, offset: usize) -> usize {
    crate::vector_width(dtype, &[m, offset])
}

struct GatedOp {
    m: usize,
    act: GatedAct,
}

impl GatedOp {
    fn out_shape(&self, l: &Layout) -> Shape {
        let mut dims = l.dims().to_vec();
        *dims.last_mut().unwrap() = self.m;
        Shape::from(dims)
    }
}

impl CustomOp1 for GatedOp {
    fn name(&self) -> &'static str {
        "strata-gated-act"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (m, act) = (self.m, self.act);
        let out = crate::map_float_storage!(s, "gated_act", |x| gated_act_cpu(
            crate::contiguous(x, l, "x")?,
            m,
            act
        ));
        Ok((out, self.out_shape(l)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let out = crate::cuda::gated_act(s, l, self.m, self.act as u32)?;
        Ok((out, self.out_shape(l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn data(n: usize, seed: f32) -> Vec<f32> {
        crate::conformance::wave(n, seed, 5.0)
    }

    /// candle's own ops on the strided gate and up views, as the decoder computes them on the CPU.
    fn naive(x: &Tensor, act: GatedAct) -> Tensor {
        let m = x.dim(D::Minus1).unwrap() / 2;
        let gate = x.narrow(D::Minus1, 0, m).unwrap();
        let up = x.narrow(D::Minus1, m, m).unwrap();
        let a = match act {
            GatedAct::Silu => gate.silu(),
            GatedAct::GeluTanh => gate.gelu(),
            GatedAct::GeluErf => gate.gelu_erf(),
            GatedAct::Relu => gate.relu(),
        };
        (a.unwrap() * up).unwrap()
    }

    #[test]
    fn cpu_twin_matches_candle_ops() {
        let x = Tensor::from_vec(data(2 * 3 * 14, 0.2), (2, 3, 14), &Device::Cpu).unwrap();
        for act in GatedAct::ALL {
            let got = gated_act(&x, act).unwrap();
            assert_eq!(got.dims(), [2, 3, 7]);
            let diff = crate::testing::max_abs_diff(&got, &naive(&x, act));
            assert!(diff < 1e-5, "{act:?}: max diff {diff}");
        }
        // bf16 storage: identical to the twin on the rounded inputs
        let xb = x.to_dtype(DType::BF16).unwrap();
        let xv: Vec<half::bf16> = xb.flatten_all().unwrap().to_vec1().unwrap();
        let got = gated_act(&xb, GatedAct::Silu).unwrap();
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<half::bf16>().unwrap(),
            gated_act_cpu(&xv, 7, GatedAct::Silu)
        );
    }

    #[test]
    fn odd_last_axis_is_an_error() {
        let x = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(gated_act(&x, GatedAct::Relu).is_err());
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_gated_act_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_gated_act_matches_cpu_twin") else {
            return;
        };
        crate::conformance::gated_act(|x, act| gated_act(&gpu(x)?, act));
    }
}
