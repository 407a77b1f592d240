//! How `gpu_*` tests get their device.
//!
//! A `gpu_*` test never passes silently without a GPU: with no CUDA device (or a build without
//! the `cuda` feature) it prints `NOT RUN` and returns — and it panics instead when
//! `STRATA_REQUIRE_GPU=1`, which `scripts/gpu-check.sh` sets on the GPU machine.
use candle_core::{DType, Device, Tensor};

/// `true` when `STRATA_REQUIRE_GPU=1`.
pub fn gpu_required() -> bool {
    std::env::var("STRATA_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// CUDA device 0, or `None` after printing why the test did not run (panics under
/// `STRATA_REQUIRE_GPU=1`).
pub fn gpu_device(test: &str) -> Option<Device> {
    #[cfg(feature = "cuda")]
    let reason = match Device::new_cuda(0) {
        Ok(d) => return Some(d),
        Err(e) => format!("no usable CUDA device: {e}"),
    };
    #[cfg(not(feature = "cuda"))]
    let reason = String::from("built without the `cuda` feature");
    if gpu_required() {
        panic!("{test}: STRATA_REQUIRE_GPU=1 but {reason}");
    }
    eprintln!(
        "{test}: NOT RUN ({reason}) — this is not a pass; scripts/gpu-check.sh runs it on a GPU machine"
    );
    None
}

/// For a `gpu_*` test: a function moving CPU tensors to CUDA device 0, or `None` after saying
/// why the test did not run (see [`gpu_device`]). A view that starts `n` elements into its CPU
/// storage starts `n` elements into its GPU storage too, so a kernel sees the same alignment
/// (and takes the same path) as in the emulator.
pub fn to_gpu(test: &str) -> Option<impl Fn(&Tensor) -> candle_core::Result<Tensor>> {
    let dev = gpu_device(test)?;
    Some(move |t: &Tensor| at_storage_offset(&t.to_device(&dev)?, t.layout().start_offset()))
}

/// `t` (contiguous) as a view `start` elements into a storage of its own device.
pub(crate) fn at_storage_offset(t: &Tensor, start: usize) -> candle_core::Result<Tensor> {
    if start == 0 {
        return Ok(t.clone());
    }
    let lead = Tensor::zeros(start, t.dtype(), t.device())?;
    Tensor::cat(&[&lead, &t.flatten_all()?], 0)?
        .narrow(0, start, t.elem_count())?
        .reshape(t.dims())
}

/// Largest |a − b| of two tensors of one shape, in f32 on the CPU (for the kernel tests).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    (cpu(a) - cpu(b))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Asserts that `got` and `want` are within `tolerance` (`[f32, bf16, f16]`, picked by `dtype`,
/// the dtype the kernel ran in) of each other everywhere, on whichever devices they are (both are
/// compared in f32 on the CPU); `what` names the case on failure.
pub fn assert_close(got: &Tensor, want: &Tensor, dtype: DType, tolerance: [f32; 3], what: &str) {
    let tol = match dtype {
        DType::F32 => tolerance[0],
        DType::BF16 => tolerance[1],
        _ => tolerance[2],
    };
    let diff = max_abs_diff(got, want);
    assert!(diff <= tol, "{what} {dtype:?}: max diff {diff} > {tol}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_its_storage_offset() {
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let v = at_storage_offset(&t, 3).unwrap();
        assert_eq!(v.layout().start_offset(), 3);
        assert_eq!(v.dims(), [2, 3]);
        assert_eq!(max_abs_diff(&v, &t), 0.0);
    }
}
