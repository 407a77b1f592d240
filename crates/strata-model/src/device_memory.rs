//! Device memory: what a batch may still allocate, and keeping freed memory in CUDA's pool.
use candle_core::Device;

use crate::error::Result;

/// With `keep`, memory freed by tensors stays in CUDA's stream-ordered pool instead of going back
/// to the driver at every synchronisation (the default pool's release threshold is 0), so a
/// forward does not re-map its activations' memory each time; PyTorch's caching allocator keeps
/// freed memory the same way. `keep = false` restores the driver's default (for benchmarks).
/// No-op on other devices.
pub fn keep_freed_device_memory(device: &Device, keep: bool) -> Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        use crate::error::ModelError;
        use candle_core::cuda_backend::cudarc::driver::{result, sys};
        let mut threshold: u64 = if keep { u64::MAX } else { 0 };
        let cu_device = d.cuda_stream().context().cu_device();
        // SAFETY: the device comes from a live context; the attribute takes a u64.
        unsafe {
            let pool = result::device::get_default_mem_pool(cu_device).and_then(|pool| {
                result::mem_pool::set_attribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    (&mut threshold as *mut u64).cast(),
                )
            });
            pool.map_err(|e| ModelError::Input(format!("CUDA memory pool set-up failed: {e}")))?;
        }
    }
    let _ = (device, keep);
    Ok(())
}

/// Bytes that new tensors can still get on `device`: the driver's free memory plus what CUDA's
/// pool holds without a live tensor in it (freed memory stays pooled, see
/// [`keep_freed_device_memory`]). `None` where it cannot be asked (CPU, Metal).
pub fn available_device_memory(device: &Device) -> Result<Option<u64>> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        use crate::error::ModelError;
        use candle_core::cuda_backend::cudarc::driver::{result, sys};
        let context = d.cuda_stream().context().clone();
        let failed = |e| ModelError::Input(format!("CUDA memory query failed: {e}"));
        let (free, _total) = context.mem_get_info().map_err(failed)?;
        let pool_attribute = |attribute| -> Result<u64> {
            let mut value: u64 = 0;
            // SAFETY: the device comes from a live context; both attributes are u64.
            unsafe {
                let pool = result::device::get_default_mem_pool(context.cu_device()).map_err(failed)?;
                result::mem_pool::get_attribute(pool, attribute, (&mut value as *mut u64).cast())
                    .map_err(failed)?;
            }
            Ok(value)
        };
        let reserved = pool_attribute(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?;
        let used = pool_attribute(sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?;
        return Ok(Some(free as u64 + reserved.saturating_sub(used)));
    }
    let _ = device;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU has no device memory to ask about: batch sizing falls back to its fixed size.
    #[test]
    fn cpu_memory_is_unknown_and_pool_setup_is_a_no_op() {
        assert_eq!(available_device_memory(&Device::Cpu).unwrap(), None);
        keep_freed_device_memory(&Device::Cpu, true).unwrap();
    }
}
