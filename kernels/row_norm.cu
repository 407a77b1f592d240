// RMSNorm / LayerNorm of each row in one pass over memory (replaces the cast to f32, candle's norm
// kernel and the cast back as three kernels with f32 intermediates):
//   RMSNorm:   y = x / sqrt(mean(x²) + eps) * w
//   LayerNorm: y = (x - mean(x)) / sqrt(mean((x - mean)²) + eps) * w + b
// x, y [rows, cols] contiguous in T; affine f32 [1 or 2, cols] (w, then b for LayerNorm). Math in
// f32 (two-pass mean and variance, as transformers computes in f32). One block per row.
// CPU twin: strata_kernels::row_norm_cpu.
#include "common.cuh"
#include <math.h>

#define NORM_THREADS 256

__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warps[NORM_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    __syncthreads(); // the previous reduction's readers are done with `warps`
    if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = v;
    __syncthreads();
    v = warps[0];
    for (int w = 1; w < NORM_THREADS / 32; w++) v += warps[w];
    return v;
}

template <typename T>
__device__ void row_norm(const T *x, const float *affine, T *y, uint32_t cols, float eps, uint32_t center) {
    const T *xr = x + (size_t)blockIdx.x * cols;
    T *yr = y + (size_t)blockIdx.x * cols;
    const uint32_t tid = threadIdx.x;
    float mean = 0.0f;
    if (center) {
        float s = 0.0f;
        for (uint32_t i = tid; i < cols; i += NORM_THREADS) s += to_f32(xr[i]);
        mean = block_sum(s) / (float)cols;
    }
    float s2 = 0.0f;
    for (uint32_t i = tid; i < cols; i += NORM_THREADS) {
        const float d = to_f32(xr[i]) - mean;
        s2 += d * d;
    }
    const float inv = rsqrtf(block_sum(s2) / (float)cols + eps);
    const float *w = affine, *b = affine + cols;
    for (uint32_t i = tid; i < cols; i += NORM_THREADS) {
        float v = (to_f32(xr[i]) - mean) * inv * w[i];
        if (center) v += b[i];
        yr[i] = from_f32<T>(v);
    }
}

#define ROW_NORM(NAME, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS)                                     \
    NAME(const T *x, const float *affine, T *y, uint32_t cols, float eps, uint32_t center) {      \
        row_norm<T>(x, affine, y, cols, eps, center);                                              \
    }

ROW_NORM(row_norm_f32, float)
ROW_NORM(row_norm_bf16, __nv_bfloat16)
ROW_NORM(row_norm_f16, __half)
