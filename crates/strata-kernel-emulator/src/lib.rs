//! strata's CUDA kernels (`kernels/*.cu`) run on the CPU, so that their code — indexing, block
//! reductions, `__syncthreads` and warp shuffles, dtype conversions — is tested against the CPU
//! twins on every machine, not only where a GPU happens to be lent.
//!
//! build.rs compiles the `.cu` sources as host C++ with stand-ins for the CUDA language
//! (`cpp/cuda_emulation.h`); [`launch`] runs a kernel's body once per CUDA thread, each thread a
//! fiber scheduled on the calling OS thread, with real barriers for `__syncthreads` and the
//! shuffles. Each function below launches its kernel with the grid, block and arguments that
//! `strata-kernels`' CUDA launcher (`crates/strata-kernels/src/cuda.rs`) uses, on CPU tensors,
//! and has the signature of the matching `strata_kernels` tensor function, so the same
//! [`strata_kernels::conformance`] checks run on the emulated and on the real GPU kernels.
//!
//! Not covered here (the `gpu_*` tests on a GPU cover them): PTX compilation, the device memory
//! model and data races, and CUDA's math-library rounding (host libm is used).
use std::ffi::c_void;

use candle_core::{bail, DType, Device, Result, Tensor, WithDType, D};
use half::{bf16, f16};
use strata_kernels::{GatedAct, HeadNorm, HeadSlice, LensRow, Rotary};

extern "C" {
    fn strata_emulate_launch(
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        body: extern "C" fn(*mut c_void),
        user: *mut c_void,
    ) -> i32;
    fn strata_emulate_fault() -> *const std::ffi::c_char;
}

/// Runs `thread` as every CUDA thread of a one-dimensional `grid × block` launch; inside it,
/// `threadIdx`, `blockIdx`, `blockDim` and `gridDim` are those of the emulated thread.
pub fn launch<F: Fn()>(grid: u32, block: u32, thread: F) -> Result<()> {
    launch3([grid, 1, 1], block, thread)
}

/// [`launch`] with a three-dimensional grid.
pub fn launch3<F: Fn()>(grid: [u32; 3], block: u32, thread: F) -> Result<()> {
    launch_with_shared(grid, block, 0, thread)
}

/// [`launch3`] with `shared_bytes` of dynamic shared memory per block (uninitialised: 0xff bytes).
pub fn launch_with_shared<F: Fn()>(grid: [u32; 3], block: u32, shared_bytes: u32, thread: F) -> Result<()> {
    extern "C" fn trampoline<F: Fn()>(user: *mut c_void) {
        // SAFETY: `user` is the `&F` passed below, alive for the whole launch.
        unsafe { (*(user as *const F))() }
    }
    let (g, b) = (grid, [block, 1, 1]);
    // SAFETY: the launcher calls `trampoline` only during this call, on this OS thread.
    let status = unsafe {
        strata_emulate_launch(
            g.as_ptr(),
            b.as_ptr(),
            shared_bytes,
            trampoline::<F>,
            &thread as *const F as *mut c_void,
        )
    };
    match status {
        0 => Ok(()),
        1 => bail!("emulated launch <<<{grid:?}, {block}>>>: the threads of a block deadlock on a barrier"),
        3 => {
            // SAFETY: a static C string, set by the launch that just returned.
            let what = unsafe { std::ffi::CStr::from_ptr(strata_emulate_fault()) };
            bail!(
                "emulated launch <<<{grid:?}, {block}>>>: {}",
                what.to_string_lossy()
            )
        }
        _ => bail!(
            "emulated launch <<<{grid:?}, {block}, {shared_bytes}>>>: empty grid, more than 1024 threads per block or too much shared memory"
        ),
    }
}

/// The kernels' host symbols for one element type, as declared in `kernels/*.cu`.
macro_rules! declare_kernels {
    ($module:ident, $t:ty, $suffix:literal) => {
        mod $module {
            type T = $t;
            extern "C" {
                #[link_name = concat!("lens_stats_", $suffix)]
                pub fn lens_stats(
                    z: *const T,
                    fin: *const f32,
                    idx: *const u32,
                    out: *mut f32,
                    rows: u32,
                    vocab: u32,
                );
                #[link_name = concat!("scatter_patches_", $suffix)]
                pub fn scatter_patches(
                    dst: *mut T,
                    vals: *const T,
                    idx: *const u32,
                    n: u32,
                    seq: u32,
                    d: u32,
                );
                #[link_name = concat!("gated_act_", $suffix)]
                pub fn gated_act(x: *const T, out: *mut T, rows: u32, m: u32, act: u32, vec: u32);
                #[link_name = concat!("masked_softmax_", $suffix)]
                pub fn masked_softmax(
                    scores: *const T,
                    mask: *const f32,
                    out: *mut T,
                    heads: u32,
                    q: u32,
                    k: u32,
                    mask_batch: u32,
                    scale: f32,
                    cap: f32,
                );
                #[link_name = concat!("row_norm_", $suffix)]
                pub fn row_norm(x: *const T, affine: *const f32, y: *mut T, cols: u32, eps: f32, center: u32);
                #[link_name = concat!("split_heads_", $suffix)]
                pub fn split_heads(
                    x: *const T,
                    cos: *const T,
                    sin: *const T,
                    out: *mut T,
                    batch: u32,
                    heads: u32,
                    pos: u32,
                    e: u32,
                    width: u32,
                    col0: u32,
                    rot: u32,
                    cos_batch: u32,
                    vec: u32,
                );
                #[link_name = concat!("split_heads_normed_", $suffix)]
                pub fn split_heads_normed(
                    x: *const T,
                    weight: *const f32,
                    cos: *const T,
                    sin: *const T,
                    out: *mut T,
                    batch: u32,
                    heads: u32,
                    pos: u32,
                    e: u32,
                    width: u32,
                    col0: u32,
                    rot: u32,
                    cos_batch: u32,
                    eps: f32,
                );
            }
        }
    };
}
declare_kernels!(kernels_f32, f32, "f32");
declare_kernels!(kernels_bf16, half::bf16, "bf16");
declare_kernels!(kernels_f16, half::f16, "f16");

/// Evaluates `$body` with `$t` the element type of `$dt` and `$k` the module of its kernels.
macro_rules! with_kernels {
    ($dt:expr, |$t:ident, $k:ident| $body:block) => {
        match $dt {
            DType::F32 => {
                type $t = f32;
                use kernels_f32 as $k;
                $body
            }
            DType::BF16 => {
                type $t = bf16;
                use kernels_bf16 as $k;
                $body
            }
            DType::F16 => {
                type $t = f16;
                use kernels_f16 as $k;
                $body
            }
            other => bail!("the kernels take f32, bf16 or f16, got {other:?}"),
        }
    };
}

/// Threads per block of cudarc's `LaunchConfig::for_num_elems`, which cuda.rs uses for the
/// elementwise kernels.
const ELEMENTWISE_BLOCK: u32 = 1024;

fn elementwise(n: usize, thread: impl Fn()) -> Result<()> {
    launch((n as u32).div_ceil(ELEMENTWISE_BLOCK), ELEMENTWISE_BLOCK, thread)
}

fn host<T: WithDType>(t: &Tensor) -> Result<Vec<T>> {
    t.flatten_all()?.to_vec1::<T>()
}

/// Elements in a 16-byte aligned buffer, `lead` elements in: as aligned as on a device, where a
/// buffer starts on a 256-byte boundary and a view `start` elements into it is 16-byte aligned
/// only when `start` elements make a multiple of 16 bytes. Kernels that move 16-byte vectors
/// where they can (and elements where they cannot) see the alignment they would see on a GPU.
struct DeviceLike<T> {
    buf: Vec<u128>,
    lead: usize,
    len: usize,
    element: std::marker::PhantomData<T>,
}

impl<T: WithDType> DeviceLike<T> {
    fn zeros(lead: usize, len: usize) -> Self {
        let per_16 = 16 / std::mem::size_of::<T>();
        DeviceLike {
            buf: vec![0u128; (lead + len).div_ceil(per_16)],
            lead,
            len,
            element: std::marker::PhantomData,
        }
    }

    /// `t`'s elements, as far into the buffer as its view is into its storage (mod 16 bytes).
    fn of(t: &Tensor) -> Result<Self> {
        let values = host::<T>(t)?;
        let mut d = Self::zeros(
            t.layout().start_offset() % (16 / std::mem::size_of::<T>()),
            values.len(),
        );
        d.as_mut_slice().copy_from_slice(&values);
        Ok(d)
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: `buf` holds lead + len elements of T (zero bits are a valid T), u128-aligned.
        unsafe { std::slice::from_raw_parts_mut((self.buf.as_mut_ptr() as *mut T).add(self.lead), self.len) }
    }

    fn ptr(&self) -> *const T {
        // SAFETY: within `buf` (lead ≤ its length in elements).
        unsafe { (self.buf.as_ptr() as *const T).add(self.lead) }
    }

    fn into_tensor(mut self, shape: impl Into<candle_core::Shape>) -> Result<Tensor> {
        Tensor::from_slice(self.as_mut_slice(), shape, &Device::Cpu)
    }
}

fn zeros<T: WithDType>(n: usize) -> Vec<T> {
    vec![T::zero(); n]
}

/// [`strata_kernels::lens_stats`] by `kernels/lens_stats.cu`: one 256-thread block per row.
pub fn lens_stats(
    logits: &Tensor,
    final_logp: &Tensor,
    targets: &[u32],
    final_rows: &[u32],
) -> Result<Vec<LensRow>> {
    let (rows, vocab) = logits.dims2()?;
    let fin = host::<f32>(&final_logp.to_dtype(DType::F32)?)?;
    let idx: Vec<u32> = targets
        .iter()
        .zip(final_rows)
        .flat_map(|(&t, &f)| [t, f])
        .collect();
    if idx.len() != 2 * rows {
        bail!(
            "lens_stats: {rows} rows, {} targets, {} final rows",
            targets.len(),
            final_rows.len()
        );
    }
    let mut out = zeros::<f32>(rows * 6);
    let (o, (r, v)) = (out.as_mut_ptr(), (rows as u32, vocab as u32));
    with_kernels!(logits.dtype(), |T, k| {
        let z = host::<T>(logits)?;
        // SAFETY: the argument list of lens_stats_* in kernels/lens_stats.cu, buffers of the sizes it reads.
        launch(r, 256, || unsafe {
            k::lens_stats(z.as_ptr(), fin.as_ptr(), idx.as_ptr(), o, r, v)
        })?;
    });
    Ok(out.chunks(6).map(LensRow::from_slice).collect())
}

/// [`strata_kernels::scatter_patches`] by `kernels/scatter_patches.cu`, returning the patched
/// copy of `dst` (the kernel writes in place; tensors here are immutable).
pub fn scatter_patches(dst: &Tensor, values: &Tensor, rows: &[u32], positions: &[u32]) -> Result<Tensor> {
    let (_, seq, d) = dst.dims3()?;
    let n = rows.len();
    let idx: Vec<u32> = rows.iter().zip(positions).flat_map(|(&r, &p)| [r, p]).collect();
    let (nn, s, dd) = (n as u32, seq as u32, d as u32);
    with_kernels!(dst.dtype(), |T, k| {
        let mut x = host::<T>(dst)?;
        let vals = host::<T>(&values.to_dtype(dst.dtype())?)?;
        let xp = x.as_mut_ptr();
        // SAFETY: the argument list of scatter_patches_* in kernels/scatter_patches.cu.
        elementwise(n * d, || unsafe {
            k::scatter_patches(xp, vals.as_ptr(), idx.as_ptr(), nn, s, dd)
        })?;
        Tensor::from_vec(x, dst.shape(), &Device::Cpu)
    })
}

/// [`strata_kernels::gated_act`] by `kernels/gated_act.cu`.
pub fn gated_act(x: &Tensor, act: GatedAct) -> Result<Tensor> {
    let m = x.dim(D::Minus1)? / 2;
    let n = x.elem_count() / 2;
    let mut dims = x.dims().to_vec();
    *dims.last_mut().unwrap() = m;
    let (rows, mm) = ((n / m.max(1)) as u32, m as u32);
    let vec = strata_kernels::gated_act_vector_width(x.dtype(), m, x.layout().start_offset());
    with_kernels!(x.dtype(), |T, k| {
        let xv = DeviceLike::<T>::of(x)?;
        let mut out = DeviceLike::<T>::zeros(0, n);
        let o = out.as_mut_slice().as_mut_ptr();
        // SAFETY: the argument list of gated_act_* in kernels/gated_act.cu.
        elementwise(n / vec, || unsafe {
            k::gated_act(xv.ptr(), o, rows, mm, act as u32, vec as u32)
        })?;
        out.into_tensor(dims)
    })
}

/// [`strata_kernels::masked_softmax`] by `kernels/masked_softmax.cu`: one 128-thread block per
/// row of scores.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f32, softcap: Option<f32>) -> Result<Tensor> {
    let (b, heads, q, k_len) = scores.dims4()?;
    let mask_batch = mask.dim(0)? as u32;
    let mask = host::<f32>(mask)?;
    let n = scores.elem_count();
    let (h, qq, kk, cap) = (heads as u32, q as u32, k_len as u32, softcap.unwrap_or(0.0));
    with_kernels!(scores.dtype(), |T, k| {
        let s = host::<T>(scores)?;
        let mut out = zeros::<T>(n);
        let o = out.as_mut_ptr();
        // SAFETY: the argument list of masked_softmax_* in kernels/masked_softmax.cu.
        launch((b * heads * q) as u32, 128, || unsafe {
            k::masked_softmax(s.as_ptr(), mask.as_ptr(), o, h, qq, kk, mask_batch, scale, cap)
        })?;
        Tensor::from_vec(out, scores.shape(), &Device::Cpu)
    })
}

/// [`strata_kernels::row_norm`] by `kernels/row_norm.cu`: one 256-thread block per row.
pub fn row_norm(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    let cols = x.dim(D::Minus1)?;
    let rows = x.elem_count() / cols.max(1);
    let mut affine = host::<f32>(weight)?;
    if let Some(b) = bias {
        affine.extend(host::<f32>(b)?);
    }
    let center = u32::from(bias.is_some());
    with_kernels!(x.dtype(), |T, k| {
        let xv = host::<T>(x)?;
        let mut out = zeros::<T>(xv.len());
        let o = out.as_mut_ptr();
        // SAFETY: the argument list of row_norm_* in kernels/row_norm.cu.
        launch(rows as u32, 256, || unsafe {
            k::row_norm(xv.as_ptr(), affine.as_ptr(), o, cols as u32, eps, center)
        })?;
        Tensor::from_vec(out, x.shape(), &Device::Cpu)
    })
}

/// [`strata_kernels::split_heads`] by `kernels/split_heads.cu`, or with a `norm` by
/// `kernels/split_heads_normed.cu` (one warp of a 128-thread block per head row).
pub fn split_heads(
    x: &Tensor,
    slice: HeadSlice,
    rope: Option<Rotary>,
    norm: Option<HeadNorm>,
) -> Result<Tensor> {
    let (b, p, width) = x.dims3()?;
    let HeadSlice {
        col0,
        heads,
        head_dim,
    } = slice;
    let n = b * heads * p * head_dim;
    let (rot, cos_batch) = match &rope {
        Some(r) if r.cos.rank() == 3 => (r.rotary_dim, r.cos.dim(0)?),
        Some(r) => (r.rotary_dim, 1),
        None => (0, 1),
    };
    // strata_kernels::split_heads passes x for the tables when there is no rotation
    let (cos, sin) = rope.as_ref().map_or((x, x), |r| (r.cos, r.sin));
    let offsets = [x, cos, sin].map(|t| t.layout().start_offset());
    let vec = strata_kernels::split_heads_vector_width(x.dtype(), width, slice, rot, offsets);
    let args = [b, heads, p, head_dim, width, col0, rot, cos_batch, vec].map(|v| v as u32);
    let weight = norm
        .map(|n| Ok::<_, candle_core::Error>((host::<f32>(n.weight)?, n.eps)))
        .transpose()?;
    with_kernels!(x.dtype(), |T, k| {
        let (xv, cos, sin) = (
            DeviceLike::<T>::of(x)?,
            DeviceLike::<T>::of(cos)?,
            DeviceLike::<T>::of(sin)?,
        );
        let mut out = DeviceLike::<T>::zeros(0, n);
        let o = out.as_mut_slice().as_mut_ptr();
        let [bb, h, pp, e, w, c0, r, cb, vec] = args;
        match &weight {
            // SAFETY: the argument lists of split_heads_* in kernels/split_heads.cu and
            // split_heads_normed_* in kernels/split_heads_normed.cu; the tables are read only
            // when rot > 0.
            None => elementwise(n / vec as usize, || unsafe {
                k::split_heads(xv.ptr(), cos.ptr(), sin.ptr(), o, bb, h, pp, e, w, c0, r, cb, vec)
            })?,
            Some((weight, eps)) => launch((b * heads * p).div_ceil(4) as u32, 128, || unsafe {
                k::split_heads_normed(
                    xv.ptr(),
                    weight.as_ptr(),
                    cos.ptr(),
                    sin.ptr(),
                    o,
                    bb,
                    h,
                    pp,
                    e,
                    w,
                    c0,
                    r,
                    cb,
                    *eps,
                )
            })?,
        }
        out.into_tensor((b, heads, p, head_dim))
    })
}

/// A `fused_attention_<dtype>_<head dim>` kernel of `kernels/fused_attention.cu`.
type AttentionKernel<T> = unsafe extern "C" fn(
    *const T,
    *const T,
    *const T,
    *const f32,
    *const u8,
    *mut T,
    u32,
    u32,
    u32,
    u32,
    u32,
    f32,
    f32,
);

extern "C" {
    /// `attention_tile_classes` of `kernels/fused_attention.cu`.
    fn attention_tile_classes(mask: *const f32, classes: *mut u8, p: u32, n: u32, tile_keys: u32);
}

/// The fused-attention kernels of one element type, by head dim (64, 96, 128, 256).
macro_rules! declare_attention_kernels {
    ($module:ident, $t:ty, $suffix:literal) => {
        mod $module {
            type T = $t;
            declare_attention_kernels!(@each T, $suffix, e64 64, e96 96, e128 128, e256 256);
        }
    };
    (@each $t:ty, $suffix:literal, $($name:ident $e:literal),*) => {
        extern "C" {
            $(
                #[link_name = concat!("fused_attention_", $suffix, "_", stringify!($e))]
                pub fn $name(
                    q: *const $t,
                    k: *const $t,
                    v: *const $t,
                    mask: *const f32,
                    classes: *const u8,
                    z: *mut $t,
                    heads: u32,
                    groups: u32,
                    p: u32,
                    n: u32,
                    mb: u32,
                    scale: f32,
                    cap: f32,
                );
            )*
        }
    };
}
declare_attention_kernels!(attention_bf16, half::bf16, "bf16");
declare_attention_kernels!(attention_f16, half::f16, "f16");

/// [`strata_kernels::fused_attention`] by `kernels/fused_attention.cu` (bf16/f16, head dims
/// 64/96/128/256): one 128-thread block per (64-query tile, head, batch row), with the dynamic
/// shared memory the CUDA launch gives it.
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f32,
    softcap: Option<f32>,
) -> Result<Tensor> {
    fn run<T: WithDType>(
        kernels: [AttentionKernel<T>; 4],
        (q, k, v, mask): (&Tensor, &Tensor, &Tensor, &Tensor),
        scale: f32,
        cap: f32,
    ) -> Result<Tensor> {
        let (b, h, p, e) = q.dims4()?;
        let (_, g, n, _) = k.dims4()?;
        let kernel = match e {
            64 => kernels[0],
            96 => kernels[1],
            128 => kernels[2],
            256 => kernels[3],
            _ => bail!("fused_attention: no kernel for head dim {e}"),
        };
        let mb = mask.dim(0)? as u32;
        let (qv, kv, vv) = (
            DeviceLike::<T>::of(q)?,
            DeviceLike::<T>::of(k)?,
            DeviceLike::<T>::of(v)?,
        );
        let mv = host::<f32>(mask)?;
        let [hh, gg, pp, nn] = [h, g, p, n].map(|x| x as u32);
        // What each 16 queries see of each key tile, as the CUDA launch computes it first.
        let tile_keys = strata_kernels::fused_attention_tile_keys(e) as u32;
        let mut classes = vec![0u8; strata_kernels::fused_attention_tile_classes_len(mb as usize, p, n, e)];
        let cp = classes.as_mut_ptr();
        let classify = || unsafe {
            // SAFETY: the argument list of attention_tile_classes in kernels/fused_attention.cu;
            // `classes` holds a byte per (mask row, row group, key tile).
            attention_tile_classes(mv.as_ptr(), cp, pp, nn, tile_keys)
        };
        launch_with_shared([p.div_ceil(16) as u32, mb, 1], 128, 0, classify)?;
        let mut z = zeros::<T>(q.elem_count());
        let zp = z.as_mut_ptr();
        let threads = || unsafe {
            // SAFETY: the argument list of fused_attention_* in kernels/fused_attention.cu.
            kernel(
                qv.ptr(),
                kv.ptr(),
                vv.ptr(),
                mv.as_ptr(),
                classes.as_ptr(),
                zp,
                hh,
                gg,
                pp,
                nn,
                mb,
                scale,
                cap,
            )
        };
        let shared = strata_kernels::fused_attention_dynamic_shared_bytes(T::DTYPE, e) as u32;
        launch_with_shared([p.div_ceil(64) as u32, hh, b as u32], 128, shared, threads)?;
        Tensor::from_vec(z, (b, p, h, e), &Device::Cpu)
    }
    let inputs = (q, k, v, mask);
    let cap = softcap.unwrap_or(0.0);
    match q.dtype() {
        DType::BF16 => {
            use attention_bf16 as k;
            run::<bf16>([k::e64, k::e96, k::e128, k::e256], inputs, scale, cap)
        }
        DType::F16 => {
            use attention_f16 as k;
            run::<f16>([k::e64, k::e96, k::e128, k::e256], inputs, scale, cap)
        }
        other => bail!("fused_attention: the kernel takes bf16 or f16, got {other:?}"),
    }
}
