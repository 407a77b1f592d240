//! `y = x Wᵀ + b`, the decoder's projections.
//!
//! On the CPU in f32 the weight is kept as column panels, `[⌈n_out / PANEL⌉, n_in, PANEL]`
//! (zero-padded), and each panel is multiplied in place by `gemm` with a short stride. candle's
//! matmul takes the weight as stored and packs all of it again on every call, which for a prompt
//! of a few tokens costs more than the products themselves (a 14-token forward of SmolLM2 spent
//! more time packing than multiplying). Elsewhere (CUDA, Metal, f16/bf16) the weight stays
//! `[n_out, n_in]` and candle's matmul runs.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Output columns per panel: a panel row is 128 bytes, so consecutive `k` of one panel sit two
/// cache lines apart and a panel (`n_in × PANEL`) stays in L2 while every row of `x` passes.
const PANEL: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Weight {
    /// `[n_out, n_in]`, as in the checkpoint.
    Rows(Tensor),
    /// CPU f32 column panels `[⌈n_out / PANEL⌉, n_in, PANEL]`.
    Panels { panels: Tensor, n_out: usize },
}

impl Linear {
    /// A projection with `weight` `[n_out, n_in]`, kept as it is (see [`Self::prepared`]).
    pub(crate) fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear {
            weight: Weight::Rows(weight),
            bias,
        }
    }

    /// Weights of several projections stacked along the output axis (q|k|v, gate|up).
    pub(crate) fn fused(parts: Vec<Linear>) -> Result<Linear> {
        let weights = parts.iter().map(Linear::rows).collect::<Result<Vec<_>>>()?;
        let weight = Tensor::cat(&weights, 0)?;
        let bias = if parts.iter().all(|p| p.bias.is_some()) {
            let biases: Vec<&Tensor> = parts.iter().filter_map(|p| p.bias.as_ref()).collect();
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias))
    }

    /// The same projection in the layout its device multiplies fastest: column panels for f32 on
    /// the CPU, rows elsewhere.
    pub(crate) fn prepared(self) -> Result<Linear> {
        let Weight::Rows(w) = &self.weight else {
            return Ok(self);
        };
        if !w.device().is_cpu() || w.dtype() != DType::F32 {
            return Ok(self);
        }
        let (n_out, n_in) = w.dims2()?;
        let blocks = n_out.div_ceil(PANEL);
        let panels = w
            .pad_with_zeros(0, 0, blocks * PANEL - n_out)?
            .reshape((blocks, PANEL, n_in))?
            .transpose(1, 2)?
            .contiguous()?;
        Ok(Linear {
            weight: Weight::Panels { panels, n_out },
            bias: self.bias,
        })
    }

    pub(crate) fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The weight as `[n_out, n_in]` (a copy for panels).
    pub(crate) fn rows(&self) -> Result<Tensor> {
        Ok(match &self.weight {
            Weight::Rows(w) => w.clone(),
            Weight::Panels { panels, n_out } => {
                let (blocks, n_in, _) = panels.dims3()?;
                panels
                    .transpose(1, 2)?
                    .reshape((blocks * PANEL, n_in))?
                    .narrow(0, 0, *n_out)?
            }
        })
    }

    /// Rows `ids` (u32, any shape) of the weight, `[ids.elem_count(), n_in]`: an embedding lookup
    /// where the matrix is shared with the unembedding.
    pub(crate) fn rows_of(&self, ids: &Tensor) -> Result<Tensor> {
        let ids = ids.flatten_all()?;
        let (panels, n_out) = match &self.weight {
            Weight::Rows(w) => return Ok(w.index_select(&ids, 0)?),
            Weight::Panels { panels, n_out } => (panels, *n_out),
        };
        let (_, n_in, _) = panels.dims3()?;
        let ids = ids.to_vec1::<u32>()?;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= n_out) {
            return Err(crate::ModelError::Input(format!(
                "token id {id} is outside the vocabulary (size {n_out})"
            )));
        }
        let (storage, layout) = panels.storage_and_layout();
        let (candle_core::Storage::Cpu(CpuStorage::F32(all)), Some((start, _))) =
            (&*storage, layout.contiguous_offsets())
        else {
            unreachable!("panels are made contiguous f32 on the CPU by `prepared`")
        };
        let mut rows: Vec<f32> = Vec::with_capacity(ids.len() * n_in);
        for id in ids.iter().map(|&id| id as usize) {
            let panel = &all[start + (id / PANEL) * n_in * PANEL..][..n_in * PANEL];
            rows.extend(panel.iter().skip(id % PANEL).step_by(PANEL));
        }
        Ok(Tensor::from_vec(rows, (ids.len(), n_in), panels.device())?)
    }

    fn n_out(&self) -> Result<usize> {
        Ok(match &self.weight {
            Weight::Rows(w) => w.dim(0)?,
            Weight::Panels { n_out, .. } => *n_out,
        })
    }

    /// `x Wᵀ + b` over the last axis of `x`, of any rank.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (n_in, lead) = (dims[dims.len() - 1], &dims[..dims.len() - 1]);
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, n_in))?;
        let y = match &self.weight {
            Weight::Rows(w) => x2.matmul(&w.t()?)?,
            Weight::Panels { panels, n_out } => x2.apply_op2(panels, PanelMatmul { n_out: *n_out })?,
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut shape = lead.to_vec();
        shape.push(self.n_out()?);
        Ok(y.reshape(shape)?)
    }
}

/// `x [m, n_in] · panelsᵀ → [m, n_out]`, one `gemm` call per panel, panels spread over rayon's
/// threads.
struct PanelMatmul {
    n_out: usize,
}

impl CustomOp2 for PanelMatmul {
    fn name(&self) -> &'static str {
        "strata-panel-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(panels)) = (s1, s2) else {
            candle_core::bail!("panel matmul: x and the weight panels must be f32")
        };
        let (Some((x0, x1)), Some((p0, p1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("panel matmul: x and the weight panels must be contiguous")
        };
        let (x, panels) = (&x[x0..x1], &panels[p0..p1]);
        let (m, k) = l1.shape().dims2()?;
        let n = self.n_out;
        let mut y = vec![0f32; m * n];
        let y_addr = y.as_mut_ptr() as usize;
        let blocks = n.div_ceil(PANEL);
        let chunk = blocks.div_ceil(4 * rayon::current_num_threads()).max(1);
        (0..blocks).into_par_iter().with_min_len(chunk).for_each(|b| {
            let width = PANEL.min(n - b * PANEL);
            // SAFETY: panel b writes columns b·PANEL .. b·PANEL + width of y, disjoint from every
            // other panel's; x holds m·k values and panel b PANEL·k, read at the strides given.
            unsafe {
                gemm::gemm(
                    m,
                    width,
                    k,
                    (y_addr as *mut f32).add(b * PANEL),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    panels.as_ptr().add(b * k * PANEL),
                    1,
                    PANEL as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    /// `∂/∂x = grad · W` (the differentiable mode backpropagates to activations, never to
    /// weights), as one batched product over the panels.
    fn bwd(
        &self,
        _x: &Tensor,
        panels: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (blocks, _, _) = panels.dims3()?;
        let m = grad.dim(0)?;
        let grad_x = grad
            .pad_with_zeros(1, 0, blocks * PANEL - self.n_out)?
            .reshape((m, blocks, PANEL))?
            .transpose(0, 1)?
            .contiguous()?
            .matmul(&panels.transpose(1, 2)?)?
            .sum(0)?;
        Ok((Some(grad_x), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use strata_kernels::testing::max_abs_diff;

    /// Panels give candle's matmul to f32 rounding, for widths that fill the last panel or not,
    /// one row or many, with a bias, and through a strided input.
    #[test]
    fn panels_match_candle_matmul() {
        let dev = Device::Cpu;
        for (m, k, n) in [(1, 16, 32), (14, 576, 960), (5, 64, 70), (33, 40, 3)] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
            let want = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            let lin = Linear::new(w.clone(), Some(b)).prepared().unwrap();
            assert!(matches!(lin.weight, Weight::Panels { .. }));
            let got = lin.forward(&x).unwrap();
            assert_eq!(got.dims(), [m, n]);
            let err = max_abs_diff(&got, &want);
            assert!(err <= 1e-5 * (k as f32).sqrt(), "m{m} k{k} n{n}: {err}");
            assert_eq!(
                lin.rows().unwrap().to_vec2::<f32>().unwrap(),
                w.to_vec2::<f32>().unwrap()
            );
        }
        // a non-contiguous input (a transposed view) and a rank-3 one
        let x = Tensor::randn(0f32, 1.0, (24, 3), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (40, 24), &dev).unwrap();
        let lin = Linear::new(w.clone(), None).prepared().unwrap();
        let want = x.t().unwrap().matmul(&w.t().unwrap()).unwrap();
        let got = lin.forward(&x.t().unwrap().reshape((1, 3, 24)).unwrap()).unwrap();
        let err = max_abs_diff(&got.squeeze(0).unwrap(), &want);
        assert!(err < 1e-5, "{err}");
    }

    /// Rows read from panels are the weight's rows; an id past the last row is an error.
    #[test]
    fn rows_of_panels_are_the_weight_rows() {
        let w = Tensor::randn(0f32, 1.0, (70, 5), &Device::Cpu).unwrap();
        let lin = Linear::new(w.clone(), None).prepared().unwrap();
        let ids = Tensor::new(&[[69u32, 0], [31, 32]], &Device::Cpu).unwrap();
        let want = w.index_select(&ids.flatten_all().unwrap(), 0).unwrap();
        assert_eq!(
            lin.rows_of(&ids).unwrap().to_vec2::<f32>().unwrap(),
            want.to_vec2::<f32>().unwrap()
        );
        assert!(lin
            .rows_of(&Tensor::new(&[70u32], &Device::Cpu).unwrap())
            .is_err());
    }

    /// The gradient reaching `x` through panels equals the one through candle's matmul.
    #[test]
    fn panels_backpropagate_to_the_input() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (70, 16), &dev).unwrap();
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 16), &dev).unwrap()).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (3, 70), &dev).unwrap();
        let grad_of = |lin: &Linear| {
            let y = lin.forward(x.as_tensor()).unwrap();
            let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(x.as_tensor()).expect("a gradient for x").clone()
        };
        let rows = grad_of(&Linear::new(w.clone(), None));
        let panels = grad_of(&Linear::new(w, None).prepared().unwrap());
        let err = max_abs_diff(&rows, &panels);
        assert!(err < 1e-5, "{err}");
    }
}
