// Queries, keys or values of every head out of the fused qkv projection, with rotary embeddings,
// in one pass (replaces the strided transpose copy and candle's rope kernel):
//   out[b, h, p, i] = x[b, p, col0 + h*e + i]                                      i >= rot
//   out[b, h, p, i] = x_i * cos[j] - x_{i+rot/2} * sin[j]      (j = i)             i <  rot/2
//   out[b, h, p, i] = x_i * cos[j] + x_{i-rot/2} * sin[j]      (j = i - rot/2)     rot/2 <= i < rot
// x [B, P, W] contiguous, out [B, H, P, E] contiguous, cos/sin [CB, P, rot/2] in x's dtype
// (CB = B, or 1 shared by the batch; unused when rot = 0): the "rotate half" (GPT-NeoX) layout
// of transformers' Llama-style models. Math in f32. CPU twin: strata_kernels::split_heads_cpu.
#include "common.cuh"

template <typename T>
__device__ void split_heads(const T *x, const T *cos, const T *sin, T *out, uint32_t batch, uint32_t heads,
                            uint32_t pos, uint32_t e, uint32_t width, uint32_t col0, uint32_t rot,
                            uint32_t cos_batch) {
    const size_t n = (size_t)batch * heads * pos * e;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    const uint32_t i = idx % e;
    const size_t t = idx / e;
    const uint32_t p = t % pos;
    const size_t bh = t / pos;
    const uint32_t h = bh % heads;
    const size_t b = bh / heads;
    const T *row = x + (b * pos + p) * width + col0 + (size_t)h * e;
    float v = to_f32(row[i]);
    if (i < rot) {
        const uint32_t half = rot / 2, j = i < half ? i : i - half;
        const size_t cs = ((b % cos_batch) * pos + p) * half + j;
        const float c = to_f32(cos[cs]), s = to_f32(sin[cs]);
        v = i < half ? v * c - to_f32(row[i + half]) * s : v * c + to_f32(row[i - half]) * s;
    }
    out[idx] = from_f32<T>(v);
}

#define SPLIT_HEADS(NAME, T)                                                                       \
    extern "C" __global__ void NAME(const T *x, const T *cos, const T *sin, T *out, uint32_t batch, \
                                    uint32_t heads, uint32_t pos, uint32_t e, uint32_t width,       \
                                    uint32_t col0, uint32_t rot, uint32_t cos_batch) {              \
        split_heads<T>(x, cos, sin, out, batch, heads, pos, e, width, col0, rot, cos_batch);       \
    }

SPLIT_HEADS(split_heads_f32, float)
SPLIT_HEADS(split_heads_bf16, __nv_bfloat16)
SPLIT_HEADS(split_heads_f16, __half)
