//! Scatter a batch of patches into a batch of residual streams, in place (kernels/scatter_patches.cu).
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, InplaceOp3, Layout, Result, Tensor};

/// CPU twin of `scatter_patches`: `dst[rows[p], positions[p], :] = values[p, :]` for every patch
/// `p`, with `dst` a row-major `[batch, seq, d]` buffer and `values` `[n, d]`. Later patches win
/// when two hit the same place (the GPU kernel leaves that order unspecified: avoid duplicates).
pub fn scatter_patches_cpu<T: Copy>(
    dst: &mut [T],
    seq: usize,
    d: usize,
    values: &[T],
    rows: &[u32],
    positions: &[u32],
) {
    assert_eq!(rows.len(), positions.len(), "one position per patch");
    assert_eq!(values.len(), rows.len() * d, "values is not [n, d]");
    for (p, (&r, &t)) in rows.iter().zip(positions).enumerate() {
        let (r, t) = (r as usize, t as usize);
        assert!(t < seq, "position {t} outside the sequence ({seq})");
        let at = (r * seq + t) * d;
        dst[at..at + d].copy_from_slice(&values[p * d..(p + 1) * d]);
    }
}

/// Writes `values[p]` (`[n, d]`) into `dst[rows[p], positions[p], :]` (`dst`: `[batch, seq, d]`,
/// contiguous, f32/bf16/f16), in place, on dst's device (`values` is converted to dst's dtype).
/// Candle tensors share storage between clones and views: every tensor sharing dst's storage
/// sees the patch. `values` must not be a view of `dst`.
pub fn scatter_patches(dst: &Tensor, values: &Tensor, rows: &[u32], positions: &[u32]) -> Result<()> {
    let (batch, seq, d) = dst.dims3()?;
    let (n, d2) = values.dims2()?;
    if d2 != d || n != rows.len() || n != positions.len() {
        bail!(
            "scatter_patches: values {:?} for {} rows / {} positions into [{batch}, {seq}, {d}]",
            values.dims(),
            rows.len(),
            positions.len()
        );
    }
    if !dst.is_contiguous() {
        bail!("scatter_patches: dst must be contiguous (it is written in place)");
    }
    if !matches!(dst.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!(
            "scatter_patches: dst must be f32, bf16 or f16, got {:?}",
            dst.dtype()
        );
    }
    if let Some(r) = rows.iter().find(|&&r| r as usize >= batch) {
        bail!("scatter_patches: row {r} outside the batch ({batch})");
    }
    if let Some(t) = positions.iter().find(|&&t| t as usize >= seq) {
        bail!("scatter_patches: position {t} outside the sequence ({seq})");
    }
    if n == 0 {
        return Ok(());
    }
    let idx: Vec<u32> = rows.iter().zip(positions).flat_map(|(&r, &t)| [r, t]).collect();
    let idx = Tensor::from_vec(idx, (n, 2), dst.device())?;
    let values = values.to_dtype(dst.dtype())?.contiguous()?;
    dst.inplace_op3(&values, &idx, &ScatterOp { n, seq, d })
}

struct ScatterOp {
    n: usize,
    seq: usize,
    d: usize,
}

impl InplaceOp3 for ScatterOp {
    fn name(&self) -> &'static str {
        "strata-scatter-patches"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        vals: &CpuStorage,
        vl: &Layout,
        idx: &CpuStorage,
        il: &Layout,
    ) -> Result<()> {
        let CpuStorage::U32(idx) = idx else {
            bail!("scatter_patches: indices must be u32")
        };
        let idx = crate::contiguous(idx, il, "indices")?;
        let rows: Vec<u32> = idx.iter().step_by(2).copied().collect();
        let pos: Vec<u32> = idx.iter().skip(1).step_by(2).copied().collect();
        let Some((a, b)) = dst_l.contiguous_offsets() else {
            bail!("scatter_patches: dst must be contiguous")
        };
        let (seq, d) = (self.seq, self.d);
        debug_assert_eq!(rows.len(), self.n);
        match (dst, vals) {
            (CpuStorage::F32(x), CpuStorage::F32(v)) => scatter_patches_cpu(
                &mut x[a..b],
                seq,
                d,
                crate::contiguous(v, vl, "values")?,
                &rows,
                &pos,
            ),
            (CpuStorage::BF16(x), CpuStorage::BF16(v)) => scatter_patches_cpu(
                &mut x[a..b],
                seq,
                d,
                crate::contiguous(v, vl, "values")?,
                &rows,
                &pos,
            ),
            (CpuStorage::F16(x), CpuStorage::F16(v)) => scatter_patches_cpu(
                &mut x[a..b],
                seq,
                d,
                crate::contiguous(v, vl, "values")?,
                &rows,
                &pos,
            ),
            (x, v) => bail!("scatter_patches: dtypes {:?} / {:?}", x.dtype(), v.dtype()),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        dst: &mut candle_core::CudaStorage,
        dst_l: &Layout,
        vals: &candle_core::CudaStorage,
        vl: &Layout,
        idx: &candle_core::CudaStorage,
        il: &Layout,
    ) -> Result<()> {
        crate::cuda::scatter_patches(dst, dst_l, (vals, vl), (idx, il), self.n, self.seq, self.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    fn ramp(n: usize, start: f32) -> Vec<f32> {
        (0..n).map(|i| start + i as f32 * 0.5).collect()
    }

    #[test]
    fn cpu_twin_writes_exactly_the_patched_positions() {
        let (b, t, d) = (3, 5, 4);
        let mut dst = ramp(b * t * d, 0.0);
        let before = dst.clone();
        let vals = ramp(2 * d, -100.0);
        scatter_patches_cpu(&mut dst, t, d, &vals, &[2, 0], &[4, 1]);
        for r in 0..b {
            for p in 0..t {
                let got = &dst[(r * t + p) * d..(r * t + p + 1) * d];
                let want = match (r, p) {
                    (2, 4) => &vals[..d],
                    (0, 1) => &vals[d..],
                    _ => &before[(r * t + p) * d..(r * t + p + 1) * d],
                };
                assert_eq!(got, want, "row {r} position {p}");
            }
        }
    }

    #[test]
    fn tensor_api_matches_naive_slice_assign() {
        let (b, t, d) = (4, 6, 8);
        for dt in [DType::F32, DType::BF16, DType::F16] {
            let base = Tensor::from_vec(ramp(b * t * d, 1.0), (b, t, d), &Device::Cpu)
                .unwrap()
                .to_dtype(dt)
                .unwrap();
            let vals = Tensor::from_vec(ramp(3 * d, -7.0), (3, d), &Device::Cpu).unwrap();
            let (rows, pos) = ([1u32, 3, 0], [0u32, 5, 2]);
            let dst = base.copy().unwrap();
            scatter_patches(&dst, &vals, &rows, &pos).unwrap();
            // naive: slice_assign one position at a time
            let mut want = base.copy().unwrap();
            for p in 0..3 {
                let v = vals
                    .i(p)
                    .unwrap()
                    .to_dtype(dt)
                    .unwrap()
                    .reshape((1, 1, d))
                    .unwrap();
                let (r, q) = (rows[p] as usize, pos[p] as usize);
                want = want.slice_assign(&[r..r + 1, q..q + 1, 0..d], &v).unwrap();
            }
            let diff = crate::testing::max_abs_diff(&dst, &want);
            assert_eq!(diff, 0.0, "{dt:?}");
        }
    }

    #[test]
    fn bad_patches_are_errors() {
        let dst = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let v = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(scatter_patches(&dst, &v, &[2], &[0])
            .unwrap_err()
            .to_string()
            .contains("outside the batch"));
        assert!(scatter_patches(&dst, &v, &[0], &[3])
            .unwrap_err()
            .to_string()
            .contains("outside the sequence"));
        let t = dst.transpose(0, 1).unwrap();
        assert!(scatter_patches(&t, &v, &[0], &[0])
            .unwrap_err()
            .to_string()
            .contains("contiguous"));
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_scatter_patches_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_scatter_patches_matches_cpu_twin") else {
            return;
        };
        crate::conformance::scatter_patches(|dst, values, rows, positions| {
            let dst = gpu(dst)?;
            scatter_patches(&dst, &gpu(values)?, rows, positions)?;
            Ok(dst)
        });
    }
}
