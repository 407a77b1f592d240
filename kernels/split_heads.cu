// Queries, keys or values of every head out of the fused qkv projection, with rotary embeddings,
// in one pass (replaces the strided transpose copy and candle's rope kernel):
//   out[b, h, p, i] = x[b, p, col0 + h*e + i]                                      i >= rot
//   out[b, h, p, i] = x_i * cos[j] - x_{i+rot/2} * sin[j]      (j = i)             i <  rot/2
//   out[b, h, p, i] = x_i * cos[j] + x_{i-rot/2} * sin[j]      (j = i - rot/2)     rot/2 <= i < rot
// x [B, P, W] contiguous, out [B, H, P, E] contiguous, cos/sin [CB, P, rot/2] in x's dtype
// (CB = B, or 1 shared by the batch; unused when rot = 0): the "rotate half" (GPT-NeoX) layout
// of transformers' Llama-style models. Math in f32. CPU twin: strata_kernels::split_heads_cpu.
// A thread moves 1 or, where the shapes and offsets allow, a 16-byte vector's worth of elements.
#include "common.cuh"

// One item = V consecutive elements of a head row (V divides e, rot / 2, the width and col0, so a
// vector lies in one rotary half or past rot): 16-byte loads and stores when V > 1.
template <typename T, int V>
__device__ void split_heads(const T *x, const T *cos, const T *sin, T *out, uint32_t batch, uint32_t heads,
                            uint32_t pos, uint32_t e, uint32_t width, uint32_t col0, uint32_t rot,
                            uint32_t cos_batch) {
    const uint32_t per_row = e / V, item = blockIdx.x * blockDim.x + threadIdx.x; // output < 2^32
    if (item >= batch * heads * pos * per_row) return;
    const uint32_t i0 = item % per_row * V, t = item / per_row;
    const uint32_t p = t % pos, bh = t / pos, h = bh % heads, b = bh / heads;
    const T *row = x + ((size_t)b * pos + p) * width + col0 + (size_t)h * e;
    Elements<T, V> y = load_elements<T, V>(row + i0);
    if (i0 < rot) {
        const uint32_t half = rot / 2;
        const bool first = i0 < half;
        const Elements<T, V> partner = load_elements<T, V>(row + (first ? i0 + half : i0 - half));
        const size_t cs = ((size_t)(b % cos_batch) * pos + p) * half + (first ? i0 : i0 - half);
        const Elements<T, V> c = load_elements<T, V>(cos + cs), s = load_elements<T, V>(sin + cs);
        for (int k = 0; k < V; k++) {
            const float v = to_f32(y.e[k]) * to_f32(c.e[k]), w = to_f32(partner.e[k]) * to_f32(s.e[k]);
            y.e[k] = from_f32<T>(first ? v - w : v + w);
        }
    }
    store_elements<T, V>(out + (size_t)item * V, y);
}

// vec: elements per thread, 1 or a 16-byte vector's worth (strata_kernels::split_heads_vector_width).
#define SPLIT_HEADS(NAME, T)                                                                       \
    extern "C" __global__ void NAME(const T *x, const T *cos, const T *sin, T *out, uint32_t batch, \
                                    uint32_t heads, uint32_t pos, uint32_t e, uint32_t width,       \
                                    uint32_t col0, uint32_t rot, uint32_t cos_batch, uint32_t vec) {\
        if (vec == 1)                                                                               \
            split_heads<T, 1>(x, cos, sin, out, batch, heads, pos, e, width, col0, rot, cos_batch); \
        else                                                                                        \
            split_heads<T, 16 / sizeof(T)>(x, cos, sin, out, batch, heads, pos, e, width, col0, rot,\
                                           cos_batch);                                              \
    }

SPLIT_HEADS(split_heads_f32, float)
SPLIT_HEADS(split_heads_bf16, __nv_bfloat16)
SPLIT_HEADS(split_heads_f16, __half)
