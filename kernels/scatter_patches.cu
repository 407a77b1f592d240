// Scatter a batch of patches into a batch of residual streams, in place:
//   dst[rows[p], positions[p], :] = values[p, :]   for p in 0..n
// dst [B, T, d] contiguous, values [n, d], idx[p*2] = row, idx[p*2+1] = position.
// One thread per copied element. CPU twin: strata_kernels::scatter_patches_cpu.
#include "common.cuh"

template <typename T>
__device__ void scatter_patches(T *dst, const T *values, const uint32_t *idx, uint32_t n, uint32_t seq,
                                uint32_t d) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n * d) return;
    const size_t p = i / d, k = i % d;
    const size_t row = idx[2 * p], pos = idx[2 * p + 1];
    dst[(row * seq + pos) * d + k] = values[i];
}

#define SCATTER(NAME, T)                                                                           \
    extern "C" __global__ void NAME(T *dst, const T *values, const uint32_t *idx, uint32_t n,      \
                                    uint32_t seq, uint32_t d) {                                    \
        scatter_patches<T>(dst, values, idx, n, seq, d);                                           \
    }

SCATTER(scatter_patches_f32, float)
SCATTER(scatter_patches_bf16, __nv_bfloat16)
SCATTER(scatter_patches_f16, __half)
