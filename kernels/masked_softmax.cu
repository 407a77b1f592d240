// Attention pattern from raw scores in one pass (replaces scale, softcap, casts, mask add and
// softmax as separate kernels):
//   v = scores * scale;  v = tanh(v / cap) * cap (when cap > 0);  v += mask;  out = softmax(v)
// scores [B, H, Q, K] contiguous, mask f32 [MB, 1, Q, K] (MB = B, or 1 broadcast over the batch;
// 0 or -inf), out [B, H, Q, K] in scores' dtype. Math in f32. One block per (b, h, q) row; each
// thread keeps up to SOFTMAX_CACHE values in registers, so rows of up to
// SOFTMAX_THREADS * SOFTMAX_CACHE keys are read once (longer rows recompute the rest).
// CPU twin: strata_kernels::masked_softmax_cpu.
#include "common.cuh"
#include <math.h>

#define SOFTMAX_THREADS 128
#define SOFTMAX_CACHE 16

__device__ __forceinline__ float block_reduce(float v, bool is_max) {
    __shared__ float warps[SOFTMAX_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        const float w = __shfl_xor_sync(0xffffffff, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    __syncthreads(); // the previous reduction's readers are done with `warps`
    if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = v;
    __syncthreads();
    v = warps[0];
    for (int w = 1; w < SOFTMAX_THREADS / 32; w++) v = is_max ? fmaxf(v, warps[w]) : v + warps[w];
    return v;
}

template <typename T>
__device__ void masked_softmax(const T *scores, const float *mask, T *out, uint32_t heads, uint32_t q,
                               uint32_t k, uint32_t mask_batch, float scale, float cap) {
    const size_t row = blockIdx.x;
    const size_t b = row / ((size_t)heads * q), qi = row % q;
    const T *x = scores + row * k;
    const float *mk = mask + ((b % mask_batch) * q + qi) * k;
    T *y = out + row * k;
    auto logit = [&](uint32_t i) {
        float v = to_f32(x[i]) * scale;
        if (cap > 0.0f) v = tanhf(v * (1.0f / cap)) * cap;
        return v + mk[i];
    };
    const uint32_t tid = threadIdx.x, cached = SOFTMAX_THREADS * SOFTMAX_CACHE;
    float v[SOFTMAX_CACHE];
    float m = -INFINITY;
#pragma unroll
    for (int j = 0; j < SOFTMAX_CACHE; j++) {
        const uint32_t i = tid + j * SOFTMAX_THREADS;
        v[j] = i < k ? logit(i) : -INFINITY;
        m = fmaxf(m, v[j]);
    }
    for (uint32_t i = tid + cached; i < k; i += SOFTMAX_THREADS) m = fmaxf(m, logit(i));
    m = block_reduce(m, true);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < SOFTMAX_CACHE; j++) {
        v[j] = expf(v[j] - m);
        s += v[j];
    }
    for (uint32_t i = tid + cached; i < k; i += SOFTMAX_THREADS) s += expf(logit(i) - m);
    s = block_reduce(s, false);
#pragma unroll
    for (int j = 0; j < SOFTMAX_CACHE; j++) {
        const uint32_t i = tid + j * SOFTMAX_THREADS;
        if (i < k) y[i] = from_f32<T>(v[j] / s);
    }
    for (uint32_t i = tid + cached; i < k; i += SOFTMAX_THREADS) y[i] = from_f32<T>(expf(logit(i) - m) / s);
}

#define SOFTMAX(NAME, T)                                                                           \
    extern "C" __global__ void __launch_bounds__(SOFTMAX_THREADS)                                  \
    NAME(const T *scores, const float *mask, T *out, uint32_t heads, uint32_t q, uint32_t k,       \
         uint32_t mask_batch, float scale, float cap) {                                            \
        masked_softmax<T>(scores, mask, out, heads, q, k, mask_batch, scale, cap);                 \
    }

SOFTMAX(masked_softmax_f32, float)
SOFTMAX(masked_softmax_bf16, __nv_bfloat16)
SOFTMAX(masked_softmax_f16, __half)
