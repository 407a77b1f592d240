// Host stand-in for CUDA's <cuda_pipeline_primitives.h> (cp.async). The device may make a copy at
// any moment between its issue and the wait for its batch; the emulator takes the two extremes in
// alternate launches (launch.cpp): at issue, so a buffer other threads still read is overwritten,
// or at the wait, so a read before the wait sees stale data. The alignment contract is checked.
#pragma once
#include "cuda_emulation.h"

inline void __pipeline_memcpy_async(void *dst_shared, const void *src_global, size_t size_and_align,
                                    size_t zfill = 0) {
    if (size_and_align != 4 && size_and_align != 8 && size_and_align != 16)
        strata_emulation::fault("__pipeline_memcpy_async: size must be 4, 8 or 16 bytes");
    if (zfill > size_and_align) strata_emulation::fault("__pipeline_memcpy_async: zfill exceeds the size");
    if ((uintptr_t)dst_shared % size_and_align != 0 || (uintptr_t)src_global % size_and_align != 0)
        strata_emulation::fault("__pipeline_memcpy_async: pointers must be aligned to the size");
    strata_emulation::async_copy(dst_shared, src_global, (unsigned)(size_and_align - zfill), (unsigned)zfill);
}

inline void __pipeline_commit() { strata_emulation::async_commit(); }

inline void __pipeline_wait_prior(size_t prior) { strata_emulation::async_wait_prior(prior); }
