// Fused head-selective ablation of per-head attention outputs (before o_proj):
//   out[b, t, h, k] = keep[b, h] * z[b, t, h, k] + (1 - keep[b, h]) * repl[t, h, k]
// z [B, T, H, dh] contiguous, keep [B, H] f32 (1 = keep, 0 = ablate, fractions interpolate),
// repl [T, H, dh] (zeros for zero ablation, per-position means for mean ablation).
// Math in f32, stored in z's dtype. CPU twin: strata_kernels::ablate_heads_cpu.
#include "common.cuh"

template <typename T>
__device__ void ablate_heads(const T *z, const float *keep, const T *repl, T *out, uint32_t batch,
                             uint32_t seq, uint32_t heads, uint32_t dh) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t per_b = (size_t)seq * heads * dh;
    if (i >= (size_t)batch * per_b) return;
    const size_t b = i / per_b, in_b = i % per_b;
    const size_t h = (in_b / dh) % heads;
    const float k = keep[b * heads + h];
    out[i] = from_f32<T>(k * to_f32(z[i]) + (1.0f - k) * to_f32(repl[in_b]));
}

#define ABLATE(NAME, T)                                                                            \
    extern "C" __global__ void NAME(const T *z, const float *keep, const T *repl, T *out,          \
                                    uint32_t batch, uint32_t seq, uint32_t heads, uint32_t dh) {   \
        ablate_heads<T>(z, keep, repl, out, batch, seq, heads, dh);                                \
    }

ABLATE(ablate_heads_f32, float)
ABLATE(ablate_heads_bf16, __nv_bfloat16)
ABLATE(ablate_heads_f16, __half)
