// split_heads.cu for families that normalise each query and key head before rotary embeddings
// (Qwen3, Gemma 3: q_norm / k_norm, an RMSNorm over the head dim), norm and rotation in one pass:
//   n[i] = x_i / sqrt(mean_i(x_i^2) + eps) * weight[i]            (f32, no rounding in between)
//   out[b, h, p, i] = n_i * cos[i] - n_{i+rot/2} * sin[i]            i <  rot/2
//   out[b, h, p, i] = n_i * cos[i-rot/2] + n_{i-rot/2} * sin[i-rot/2]  rot/2 <= i < rot
//   out[b, h, p, i] = n_i                                            i >= rot
// x [B, P, W] contiguous, row of head h from column col0 + h*e; weight f32 [e] (the norm's
// effective scale: 1 + w for Gemma); cos/sin [CB, P, rot/2] in x's dtype (CB = B or 1; unused
// when rot = 0); out [B, H, P, E] in x's dtype. One warp per head row, e <= SH_MAX_E: lane l
// holds elements l, l + 32, ... (coalesced loads), the sum of squares is reduced with shuffles,
// and the normalised row goes through shared memory so that each lane finds the other rotary
// half of its elements. CPU twin: strata_kernels::split_heads_cpu with a HeadNorm.
#include "common.cuh"

#define SH_WARPS 4      // head rows per block of 128 threads
#define SH_MAX_E 256    // largest head dim (strata_kernels::SPLIT_HEADS_NORMED_MAX_HEAD_DIM)

template <typename T>
__device__ void split_heads_normed(const T *x, const float *weight, const T *cos, const T *sin, T *out,
                                   uint32_t batch, uint32_t heads, uint32_t pos, uint32_t e, uint32_t width,
                                   uint32_t col0, uint32_t rot, uint32_t cos_batch, float eps) {
    __shared__ float normed[SH_WARPS][SH_MAX_E];
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint32_t r = blockIdx.x * SH_WARPS + warp; // head row (b, h, p), output row order
    if (r >= batch * heads * pos) return;            // the whole warp: no barrier below spans warps
    const uint32_t p = r % pos, bh = r / pos, h = bh % heads, b = bh / heads;
    const T *row = x + ((size_t)b * pos + p) * width + col0 + (size_t)h * e;
    float sq = 0.0f;
    for (uint32_t i = lane; i < e; i += 32) {
        const float v = to_f32(row[i]);
        normed[warp][i] = v;
        sq += v * v;
    }
    for (int m = 16; m > 0; m /= 2) sq += __shfl_xor_sync(0xffffffff, sq, m);
    const float inv = rsqrtf(sq / (float)e + eps);
    for (uint32_t i = lane; i < e; i += 32) normed[warp][i] *= inv * weight[i];
    __syncwarp(); // every lane's normalised values written before any lane reads its partner's
    const uint32_t half = rot / 2;
    const T *cs = cos + ((size_t)(b % cos_batch) * pos + p) * half, *sn = sin + ((size_t)(b % cos_batch) * pos + p) * half;
    T *o = out + (size_t)r * e;
    for (uint32_t i = lane; i < e; i += 32) {
        float y = normed[warp][i];
        if (i < half)
            y = y * to_f32(cs[i]) - normed[warp][i + half] * to_f32(sn[i]);
        else if (i < rot)
            y = y * to_f32(cs[i - half]) + normed[warp][i - half] * to_f32(sn[i - half]);
        o[i] = from_f32<T>(y);
    }
}

#define SPLIT_HEADS_NORMED(NAME, T)                                                                \
    extern "C" __global__ void NAME(const T *x, const float *weight, const T *cos, const T *sin, T *out, \
                                    uint32_t batch, uint32_t heads, uint32_t pos, uint32_t e,       \
                                    uint32_t width, uint32_t col0, uint32_t rot, uint32_t cos_batch, \
                                    float eps) {                                                    \
        split_heads_normed<T>(x, weight, cos, sin, out, batch, heads, pos, e, width, col0, rot, cos_batch, eps); \
    }

SPLIT_HEADS_NORMED(split_heads_normed_f32, float)
SPLIT_HEADS_NORMED(split_heads_normed_bf16, __nv_bfloat16)
SPLIT_HEADS_NORMED(split_heads_normed_f16, __half)
