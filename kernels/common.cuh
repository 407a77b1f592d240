// Shared helpers for strata's kernels: dtype conversions (f32 / bf16 / f16 storage, f32 math).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half(x); }

// V consecutive elements, aligned to their size: loaded and stored as one access (16 bytes for
// the vector widths strata_kernels::vector_width picks, whose launches keep them aligned). An
// aggregate of T, so reading T memory through it breaks no aliasing rule.
template <typename T, int V> struct __align__(sizeof(T) * V) Elements {
    T e[V];
};

template <typename T, int V> __device__ __forceinline__ Elements<T, V> load_elements(const T *src) {
    return *reinterpret_cast<const Elements<T, V> *>(src);
}

template <typename T, int V> __device__ __forceinline__ void store_elements(T *dst, const Elements<T, V> &x) {
    *reinterpret_cast<Elements<T, V> *>(dst) = x;
}

// The block's dynamic shared memory (its size set by the launch) as `T *name`, and that size in
// bytes. Declared as bytes: one extern array with a different type per template instance is an
// error. The host emulation (strata-kernel-emulator) defines its own.
#ifndef STRATA_EMULATION
#define DYNAMIC_SHARED(T, name)                                                                    \
    extern __shared__ __align__(32) unsigned char name##_bytes[];                                 \
    T *name = reinterpret_cast<T *>(name##_bytes)
__device__ __forceinline__ uint32_t dynamic_shared_bytes() {
    uint32_t bytes;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
    return bytes;
}
#endif
