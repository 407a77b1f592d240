//! Launches of the PTX kernels on candle's CUDA storages (feature `cuda`).
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::sys::CUfunction_attribute;
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, CudaDevice, WrapErr};
use candle_core::{bail, CudaStorage, DType, Layout, Result, Shape};
use half::{bf16, f16};

use crate::ptx;

fn offsets(l: &Layout, what: &str) -> Result<(usize, usize)> {
    match l.contiguous_offsets() {
        Some(o) => Ok(o),
        None => bail!("strata-kernels: {what} must be contiguous"),
    }
}

fn suffix(dt: DType) -> Result<&'static str> {
    Ok(match dt {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        other => bail!("strata-kernels: unsupported dtype {other:?}"),
    })
}

/// Evaluates `$body` with `$t` the element type of the float dtype `$dt` (f32, bf16 or f16);
/// other dtypes are an error naming `$what`.
macro_rules! with_float_type {
    ($dt:expr, $what:expr, |$t:ident| $body:block) => {
        match $dt {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::BF16 => {
                type $t = bf16;
                $body
            }
            DType::F16 => {
                type $t = f16;
                $body
            }
            other => bail!("{}: unsupported dtype {other:?}", $what),
        }
    };
}

/// A kernel's output: `n` fresh device elements that `launch` writes (not called when `n` is 0).
fn fresh_output<T: CudaDType + DeviceRepr>(
    dev: &CudaDevice,
    n: usize,
    launch: impl FnOnce(&mut CudaSlice<T>) -> Result<()>,
) -> Result<CudaStorage> {
    // SAFETY: the kernel writes every element before anything reads them.
    let mut out = unsafe { dev.alloc::<T>(n)? };
    if n > 0 {
        launch(&mut out)?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

fn elementwise(n: usize) -> LaunchConfig {
    LaunchConfig::for_num_elems(n as u32)
}

fn u32_arg(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| candle_core::Error::Msg(format!("strata-kernels: {what} = {n} exceeds u32")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn lens_stats(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
    rows: usize,
    vocab: usize,
) -> Result<(CudaStorage, Shape)> {
    let dev = s1.device().clone();
    let (a1, b1) = offsets(l1, "logits")?;
    let (a2, b2) = offsets(l2, "final_logp")?;
    let (a3, b3) = offsets(l3, "indices")?;
    let fin = s2.as_cuda_slice::<f32>()?.slice(a2..b2);
    let idx = s3.as_cuda_slice::<u32>()?.slice(a3..b3);
    let mut out = dev.alloc_zeros::<f32>(rows * 6)?;
    if rows > 0 {
        let name = format!("lens_stats_{}", suffix(s1.dtype())?);
        let func = dev.get_or_load_custom_func(&name, "strata_lens_stats", ptx::LENS_STATS)?;
        let cfg = LaunchConfig {
            grid_dim: (u32_arg(rows, "rows")?, 1, 1),
            block_dim: (256, 1, 1), // LENS_THREADS in lens_stats.cu
            shared_mem_bytes: 0,
        };
        let (r, v) = (u32_arg(rows, "rows")?, u32_arg(vocab, "vocab")?);
        with_float_type!(s1.dtype(), "lens_stats", |T| {
            let z = s1.as_cuda_slice::<T>()?.slice(a1..b1);
            let mut b = func.builder();
            b.arg(&z).arg(&fin).arg(&idx).arg(&mut out).arg(&r).arg(&v);
            // SAFETY: argument list matches lens_stats_* in kernels/lens_stats.cu; sizes checked by the caller.
            unsafe { b.launch(cfg) }.w()?;
        })
    }
    Ok((CudaStorage::wrap_cuda_slice(out, dev), Shape::from((rows, 6))))
}

pub(crate) fn scatter_patches(
    dst: &mut CudaStorage,
    dst_l: &Layout,
    (vals, vl): (&CudaStorage, &Layout),
    (idx, il): (&CudaStorage, &Layout),
    n: usize,
    seq: usize,
    d: usize,
) -> Result<()> {
    let dev = dst.device().clone();
    let (a0, b0) = offsets(dst_l, "dst")?;
    let (a1, b1) = offsets(vl, "values")?;
    let (a2, b2) = offsets(il, "indices")?;
    let dt = dst.dtype();
    if vals.dtype() != dt {
        bail!("scatter_patches: values {:?} into dst {dt:?}", vals.dtype());
    }
    let name = format!("scatter_patches_{}", suffix(dt)?);
    let func = dev.get_or_load_custom_func(&name, "strata_scatter_patches", ptx::SCATTER_PATCHES)?;
    let idx = idx.as_cuda_slice::<u32>()?.slice(a2..b2);
    let (nn, s, dd) = (u32_arg(n, "patches")?, u32_arg(seq, "seq")?, u32_arg(d, "d")?);
    let cfg = elementwise(n * d);
    with_float_type!(dt, "scatter_patches", |T| {
        let v = vals.as_cuda_slice::<T>()?.slice(a1..b1);
        let mut x = dst.as_cuda_slice_mut::<T>()?.slice_mut(a0..b0);
        let mut b = func.builder();
        b.arg(&mut x).arg(&v).arg(&idx).arg(&nn).arg(&s).arg(&dd);
        // SAFETY: argument list matches scatter_patches_* in kernels/scatter_patches.cu; indices checked by the caller.
        unsafe { b.launch(cfg) }.w()?;
    });
    Ok(())
}

pub(crate) fn gated_act(s: &CudaStorage, l: &Layout, m: usize, act: u32) -> Result<CudaStorage> {
    let dev = s.device().clone();
    let (a, b) = offsets(l, "x")?;
    let n = (b - a) / 2;
    let dt = s.dtype();
    let name = format!("gated_act_{}", suffix(dt)?);
    let func = dev.get_or_load_custom_func(&name, "strata_gated_act", ptx::GATED_ACT)?;
    let (rows, mm) = (u32_arg(n / m.max(1), "rows")?, u32_arg(m, "m")?);
    u32_arg(n, "rows * m")?;
    let vec = crate::gated_act_vector_width(dt, m, a);
    let (cfg, vec) = (elementwise(n / vec), vec as u32);
    with_float_type!(dt, "gated_act", |T| {
        let x = s.as_cuda_slice::<T>()?.slice(a..b);
        fresh_output::<T>(&dev, n, |out| {
            let mut b = func.builder();
            b.arg(&x).arg(out).arg(&rows).arg(&mm).arg(&act).arg(&vec);
            // SAFETY: argument list matches gated_act_* in kernels/gated_act.cu; shape checked by the caller.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        })
    })
}

pub(crate) fn masked_softmax(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    (heads, q, k): (usize, usize, usize),
    scale: f32,
    cap: f32,
) -> Result<CudaStorage> {
    let dev = s1.device().clone();
    let (a1, b1) = offsets(l1, "scores")?;
    let (a2, b2) = offsets(l2, "mask")?;
    let (n, rows) = (b1 - a1, (b1 - a1) / k.max(1));
    let mask_batch = (b2 - a2) / (q * k).max(1);
    let dt = s1.dtype();
    let name = format!("masked_softmax_{}", suffix(dt)?);
    let func = dev.get_or_load_custom_func(&name, "strata_masked_softmax", ptx::MASKED_SOFTMAX)?;
    let mask = s2.as_cuda_slice::<f32>()?.slice(a2..b2);
    let (h, qq, kk, mb) = (
        u32_arg(heads, "heads")?,
        u32_arg(q, "q")?,
        u32_arg(k, "k")?,
        u32_arg(mask_batch, "mask batch")?,
    );
    let cfg = LaunchConfig {
        grid_dim: (u32_arg(rows, "rows")?, 1, 1),
        block_dim: (128, 1, 1), // SOFTMAX_THREADS in masked_softmax.cu
        shared_mem_bytes: 0,
    };
    with_float_type!(dt, "masked_softmax", |T| {
        let x = s1.as_cuda_slice::<T>()?.slice(a1..b1);
        fresh_output::<T>(&dev, n, |out| {
            let mut b = func.builder();
            b.arg(&x)
                .arg(&mask)
                .arg(out)
                .arg(&h)
                .arg(&qq)
                .arg(&kk)
                .arg(&mb)
                .arg(&scale)
                .arg(&cap);
            // SAFETY: argument list matches masked_softmax_* in kernels/masked_softmax.cu; shapes checked by the caller.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        })
    })
}

pub(crate) fn row_norm(
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    eps: f32,
) -> Result<CudaStorage> {
    let dev = s1.device().clone();
    let (a1, b1) = offsets(l1, "x")?;
    let (a2, b2) = offsets(l2, "weight")?;
    let cols = l1.dims().last().copied().unwrap_or(0);
    let (n, rows) = (b1 - a1, (b1 - a1) / cols.max(1));
    let center = u32::from(b2 - a2 == 2 * cols); // a bias row follows the weight: LayerNorm
    let dt = s1.dtype();
    let name = format!("row_norm_{}", suffix(dt)?);
    let func = dev.get_or_load_custom_func(&name, "strata_row_norm", ptx::ROW_NORM)?;
    let affine = s2.as_cuda_slice::<f32>()?.slice(a2..b2);
    let c = u32_arg(cols, "cols")?;
    let cfg = LaunchConfig {
        grid_dim: (u32_arg(rows, "rows")?, 1, 1),
        block_dim: (256, 1, 1), // NORM_THREADS in row_norm.cu
        shared_mem_bytes: 0,
    };
    with_float_type!(dt, "row_norm", |T| {
        let x = s1.as_cuda_slice::<T>()?.slice(a1..b1);
        fresh_output::<T>(&dev, n, |out| {
            let mut b = func.builder();
            b.arg(&x).arg(&affine).arg(out).arg(&c).arg(&eps).arg(&center);
            // SAFETY: argument list matches row_norm_* in kernels/row_norm.cu; shapes checked by the caller.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        })
    })
}

/// x, cos and sin storages and layouts, the projection's `(batch, pos, width)`, the heads, the
/// rotary dim and the tables' batch (see kernels/split_heads.cu).
pub(crate) type SplitHeadsArgs<'a> = (
    (&'a CudaStorage, &'a Layout),
    (&'a CudaStorage, &'a Layout),
    (&'a CudaStorage, &'a Layout),
    (usize, usize, usize),
    crate::HeadSlice,
    usize,
    usize,
);

/// kernels/split_heads.cu, or with `norm` (the f32 weight `[head_dim]`, at most
/// `SPLIT_HEADS_NORMED_MAX_HEAD_DIM`, and eps) kernels/split_heads_normed.cu, one warp per head
/// row. Both take the same inputs and shape arguments; the plain kernel also its vector width.
pub(crate) fn split_heads(
    args: SplitHeadsArgs,
    norm: Option<((&CudaStorage, &Layout), f32)>,
) -> Result<CudaStorage> {
    let ((s1, l1), (s2, l2), (s3, l3), (batch, pos, width), slice, rot, cos_batch) = args;
    let dev = s1.device().clone();
    let (a1, b1) = offsets(l1, "x")?;
    let (a2, b2) = offsets(l2, "cos")?;
    let (a3, b3) = offsets(l3, "sin")?;
    let rows = batch * slice.heads * pos;
    let n = rows * slice.head_dim;
    u32_arg(n, "output size")?;
    let shape_args = [
        u32_arg(batch, "batch")?,
        u32_arg(slice.heads, "heads")?,
        u32_arg(pos, "positions")?,
        u32_arg(slice.head_dim, "head dim")?,
        u32_arg(width, "width")?,
        u32_arg(slice.col0, "first column")?,
        u32_arg(rot, "rotary dim")?,
        u32_arg(cos_batch, "cos batch")?,
    ];
    let dt = s1.dtype();
    let vec = crate::split_heads_vector_width(dt, width, slice, rot, [a1, a2, a3]);
    let (func, cfg, weight) = match norm {
        None => {
            let name = format!("split_heads_{}", suffix(dt)?);
            let func = dev.get_or_load_custom_func(&name, "strata_split_heads", ptx::SPLIT_HEADS)?;
            (func, elementwise(n / vec), None)
        }
        Some(((sw, lw), eps)) => {
            let name = format!("split_heads_normed_{}", suffix(dt)?);
            let func =
                dev.get_or_load_custom_func(&name, "strata_split_heads_normed", ptx::SPLIT_HEADS_NORMED)?;
            let cfg = LaunchConfig {
                // SH_WARPS head rows of 32 threads per block in split_heads_normed.cu
                grid_dim: (u32_arg(rows.div_ceil(4), "head rows")?, 1, 1),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            let (aw, bw) = offsets(lw, "norm weight")?;
            (func, cfg, Some((sw.as_cuda_slice::<f32>()?.slice(aw..bw), eps)))
        }
    };
    let vec = vec as u32;
    with_float_type!(dt, "split_heads", |T| {
        let x = s1.as_cuda_slice::<T>()?.slice(a1..b1);
        let cos = s2.as_cuda_slice::<T>()?.slice(a2..b2);
        let sin = s3.as_cuda_slice::<T>()?.slice(a3..b3);
        fresh_output::<T>(&dev, n, |out| {
            let mut b = func.builder();
            b.arg(&x);
            if let Some((w, _)) = &weight {
                b.arg(w);
            }
            b.arg(&cos).arg(&sin).arg(out);
            for a in &shape_args {
                b.arg(a);
            }
            match &weight {
                Some((_, eps)) => b.arg(eps),
                None => b.arg(&vec),
            };
            // SAFETY: argument lists match split_heads_* in kernels/split_heads.cu (x, cos, sin,
            // out, shape, vec) and split_heads_normed_* in kernels/split_heads_normed.cu (x,
            // weight, cos, sin, out, shape, eps); shapes and the norm's head dim checked by the
            // caller.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        })
    })
}

/// `[q, k, v, mask]` storages and layouts; see kernels/fused_attention.cu.
pub(crate) fn fused_attention(
    [(sq, lq), (sk, lk), (sv, lv), (sm, lm)]: [(&CudaStorage, &Layout); 4],
    d: crate::AttentionDims,
    scale: f32,
    cap: f32,
) -> Result<CudaStorage> {
    let dev = sq.device().clone();
    let (aq, bq) = offsets(lq, "q")?;
    let (ak, bk) = offsets(lk, "k")?;
    let (av, bv) = offsets(lv, "v")?;
    let (am, bm) = offsets(lm, "mask")?;
    let n = bq - aq;
    let mask_batch = (bm - am) / (d.queries * d.keys).max(1);
    let dt = sq.dtype();
    if !matches!(dt, DType::BF16 | DType::F16) {
        bail!("fused_attention: no kernel for {dt:?}")
    }
    let name = format!("fused_attention_{}_{}", suffix(dt)?, d.head_dim);
    let func = dev.get_or_load_custom_func(&name, "strata_fused_attention", ptx::FUSED_ATTENTION)?;
    let shared = crate::fused_attention_dynamic_shared_bytes(dt, d.head_dim);
    if shared > 0 {
        // With its static arrays the block needs more than the 48 KB a kernel gets unasked.
        // (cuFuncSetAttribute wants the function's context current on this thread.)
        dev.cuda_stream().context().bind_to_thread().w()?;
        func.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            shared as i32,
        )
        .w()?;
    }
    let mask = sm.as_cuda_slice::<f32>()?.slice(am..bm);
    let (h, g, p, nk, mb) = (
        u32_arg(d.heads, "heads")?,
        u32_arg(d.groups, "kv heads")?,
        u32_arg(d.queries, "queries")?,
        u32_arg(d.keys, "keys")?,
        u32_arg(mask_batch, "mask batch")?,
    );
    // What each 16 queries see of each key tile, once per mask row (not once per head): the
    // attention kernel reads these instead of scanning the mask.
    let tile_keys = u32_arg(crate::fused_attention_tile_keys(d.head_dim), "tile keys")?;
    let classes_len = crate::fused_attention_tile_classes_len(mask_batch, d.queries, d.keys, d.head_dim);
    // SAFETY: attention_tile_classes writes every byte before the attention kernel reads them.
    let mut classes = unsafe { dev.alloc::<u8>(classes_len.max(1))? };
    if classes_len > 0 {
        let classify = dev.get_or_load_custom_func(
            "attention_tile_classes",
            "strata_fused_attention",
            ptx::FUSED_ATTENTION,
        )?;
        let cfg = LaunchConfig {
            // 16-query row groups x mask rows, FA_THREADS threads
            grid_dim: (u32_arg(d.queries.div_ceil(16), "query row groups")?, mb, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = classify.builder();
        b.arg(&mask).arg(&mut classes).arg(&p).arg(&nk).arg(&tile_keys);
        // SAFETY: argument list matches attention_tile_classes in kernels/fused_attention.cu;
        // `classes` holds one byte per (mask row, row group, key tile).
        unsafe { b.launch(cfg) }.w()?;
    }
    let cfg = LaunchConfig {
        // FA_BQ queries per block and FA_THREADS threads in fused_attention.cu
        grid_dim: (
            u32_arg(d.queries.div_ceil(64), "query tiles")?,
            h,
            u32_arg(d.batch, "batch")?,
        ),
        block_dim: (128, 1, 1),
        shared_mem_bytes: u32_arg(shared, "shared memory")?,
    };
    with_float_type!(dt, "fused_attention", |T| {
        let q = sq.as_cuda_slice::<T>()?.slice(aq..bq);
        let k = sk.as_cuda_slice::<T>()?.slice(ak..bk);
        let v = sv.as_cuda_slice::<T>()?.slice(av..bv);
        fresh_output::<T>(&dev, n, |out| {
            let mut b = func.builder();
            b.arg(&q).arg(&k).arg(&v).arg(&mask).arg(&classes).arg(out);
            b.arg(&h).arg(&g).arg(&p).arg(&nk).arg(&mb).arg(&scale).arg(&cap);
            // SAFETY: argument list matches fused_attention_* in kernels/fused_attention.cu;
            // shapes, dtype and head dim checked by the caller.
            unsafe { b.launch(cfg) }.w()?;
            Ok(())
        })
    })
}
