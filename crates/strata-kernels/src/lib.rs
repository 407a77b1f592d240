//! strata's CUDA kernels (`kernels/*.cu`) and their CPU twins.
//!
//! Every kernel has three faces:
//! - a device-generic tensor function (`lens_stats`, `scatter_patches`, `fused_attention`,
//!   `gated_act`, `masked_softmax`, `row_norm`, `split_heads`) that runs
//!   the CUDA kernel on a CUDA tensor (feature `cuda`) and the CPU twin on a CPU tensor;
//! - a CPU twin on plain slices (`*_cpu`), written as plain loops: it is the reference the GPU
//!   kernel is tested against, and is itself tested against the naive formula;
//! - a check against the twin ([`conformance`]), run on the PTX by a `gpu_*` test where a CUDA
//!   device is present (see [`testing::gpu_device`]) and on the same `.cu` source compiled for
//!   the CPU by the `strata-kernel-emulator` crate's tests everywhere.
//!
//! Without the `cuda` feature the crate compiles only the CPU twins and needs no CUDA toolkit.
//! Metal tensors are refused with candle's "no metal implementation" error: move them to the CPU
//! first (`to_device(&Device::Cpu)`) — untested on macOS.

mod attention;
pub mod conformance;
#[cfg(feature = "cuda")]
mod cuda;
mod gated;
mod heads;
mod lens;
mod norm;
mod scatter;
mod softmax;
pub mod testing;

pub use attention::{
    fused_attention, fused_attention_cpu, fused_attention_dynamic_shared_bytes, fused_attention_supported,
    fused_attention_tile_classes_len, fused_attention_tile_keys, AttentionDims, FUSED_ATTENTION_HEAD_DIMS,
};
pub use gated::{gated_act, gated_act_cpu, gated_act_vector_width, GatedAct};
pub use heads::{
    split_heads, split_heads_cpu, split_heads_norm_supported, split_heads_vector_width, HeadNorm, HeadSlice,
    Rotary, SPLIT_HEADS_NORMED_MAX_HEAD_DIM,
};
pub use lens::{lens_stats, lens_stats_cpu, lens_stats_tensor, LensRow, LENS_COLUMNS};
pub use norm::{row_norm, row_norm_cpu};
pub use scatter::{scatter_patches, scatter_patches_cpu};
pub use softmax::{masked_softmax, masked_softmax_cpu};

/// PTX of each kernel file, as compiled by build.rs (only with the `cuda` feature).
#[cfg(feature = "cuda")]
pub mod ptx {
    pub const LENS_STATS: &str = include_str!(concat!(env!("OUT_DIR"), "/lens_stats.ptx"));
    pub const SCATTER_PATCHES: &str = include_str!(concat!(env!("OUT_DIR"), "/scatter_patches.ptx"));
    pub const FUSED_ATTENTION: &str = include_str!(concat!(env!("OUT_DIR"), "/fused_attention.ptx"));
    pub const GATED_ACT: &str = include_str!(concat!(env!("OUT_DIR"), "/gated_act.ptx"));
    pub const MASKED_SOFTMAX: &str = include_str!(concat!(env!("OUT_DIR"), "/masked_softmax.ptx"));
    pub const ROW_NORM: &str = include_str!(concat!(env!("OUT_DIR"), "/row_norm.ptx"));
    pub const SPLIT_HEADS: &str = include_str!(concat!(env!("OUT_DIR"), "/split_heads.ptx"));
    pub const SPLIT_HEADS_NORMED: &str = include_str!(concat!(env!("OUT_DIR"), "/split_heads_normed.ptx"));
}

use candle_core::{bail, DType, Layout, Result};

/// Elements a thread of an elementwise kernel moves at once: a 16-byte vector of `dtype` when
/// every count and element offset in `multiples` is a multiple of it (rows and views then start on
/// 16-byte boundaries, device buffers being 256-byte aligned), else 1. Each kernel's list is in
/// [`gated_act_vector_width`] / [`split_heads_vector_width`], which the CUDA launchers and the
/// emulator (`strata-kernel-emulator`) both launch with.
pub(crate) fn vector_width(dtype: DType, multiples: &[usize]) -> usize {
    let v = 16 / dtype.size_in_bytes();
    if multiples.iter().all(|&n| n % v == 0) {
        v
    } else {
        1
    }
}

/// Applies `$body` (generic over the element type of the slice `$v`) to an f32, bf16 or f16
/// CPU storage and wraps its result in the same variant; other dtypes are an error naming `$what`.
macro_rules! map_float_storage {
    ($s:expr, $what:expr, |$v:ident| $body:expr) => {
        match $s {
            candle_core::CpuStorage::F32($v) => candle_core::CpuStorage::F32($body),
            candle_core::CpuStorage::BF16($v) => candle_core::CpuStorage::BF16($body),
            candle_core::CpuStorage::F16($v) => candle_core::CpuStorage::F16($body),
            other => candle_core::bail!("{}: unsupported dtype {:?}", $what, other.dtype()),
        }
    };
}
pub(crate) use map_float_storage;

/// Applies `$body` to three CPU storages of one float dtype (f32, bf16 or f16), seen as the
/// slices `$a`, `$b`, `$c`, and wraps its result in that dtype's variant; mixed or other dtypes
/// are an error naming `$what`.
macro_rules! map_float_storages3 {
    (($s1:expr, $s2:expr, $s3:expr), $what:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {
        match ($s1, $s2, $s3) {
            (
                candle_core::CpuStorage::F32($a),
                candle_core::CpuStorage::F32($b),
                candle_core::CpuStorage::F32($c),
            ) => candle_core::CpuStorage::F32($body),
            (
                candle_core::CpuStorage::BF16($a),
                candle_core::CpuStorage::BF16($b),
                candle_core::CpuStorage::BF16($c),
            ) => candle_core::CpuStorage::BF16($body),
            (
                candle_core::CpuStorage::F16($a),
                candle_core::CpuStorage::F16($b),
                candle_core::CpuStorage::F16($c),
            ) => candle_core::CpuStorage::F16($body),
            (a, b, c) => candle_core::bail!(
                "{}: needs three f32, bf16 or f16 inputs of one dtype, got {:?}, {:?}, {:?}",
                $what,
                a.dtype(),
                b.dtype(),
                c.dtype()
            ),
        }
    };
}
pub(crate) use map_float_storages3;

/// Evaluates `$body` (generic over the element type of the slice `$v`) on an f32, bf16 or f16
/// CPU storage; other dtypes are an error naming `$what`.
macro_rules! with_float_slice {
    ($s:expr, $what:expr, |$v:ident| $body:expr) => {
        match $s {
            candle_core::CpuStorage::F32($v) => $body,
            candle_core::CpuStorage::BF16($v) => $body,
            candle_core::CpuStorage::F16($v) => $body,
            other => candle_core::bail!("{}: unsupported dtype {:?}", $what, other.dtype()),
        }
    };
}
pub(crate) use with_float_slice;

/// The contiguous part of a CPU storage slice a layout describes.
pub(crate) fn contiguous<'a, T>(v: &'a [T], l: &Layout, what: &str) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("strata-kernels: {what} must be contiguous"),
    }
}
