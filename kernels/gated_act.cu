// Gated MLP activation from the fused gate|up projection, in one pass:
//   out[r, j] = act(x[r, j]) * x[r, m + j]      x [rows, 2m] contiguous, out [rows, m]
// act: 0 silu, 1 gelu (tanh approximation), 2 gelu (erf), 3 relu — candle's f32 definitions.
// Math in f32, stored in x's dtype. CPU twin: strata_kernels::gated_act_cpu.
// A thread makes 1 or, where m and x's offset allow, a 16-byte vector's worth of outputs.
#include "common.cuh"
#include <math.h>

__device__ __forceinline__ float activation(float x, uint32_t act) {
    switch (act) {
    case 0: return x / (1.0f + expf(-x));
    case 1: {
        const float alpha = x + 0.044715f * (x * x * x);
        return 0.5f * x * (1.0f + tanhf((float)(M_2_SQRTPI * M_SQRT1_2) * alpha));
    }
    case 2: return x * normcdff(x);
    default: return fmaxf(x, 0.0f);
    }
}

// One item = V consecutive outputs of a row (V divides m): 16-byte loads and stores when V > 1.
template <typename T, int V>
__device__ void gated_act(const T *x, T *out, uint32_t rows, uint32_t m, uint32_t act) {
    const uint32_t per_row = m / V, item = blockIdx.x * blockDim.x + threadIdx.x; // rows * m < 2^32
    if (item >= rows * per_row) return;
    const uint32_t r = item / per_row, j = item % per_row * V;
    const T *gate = x + (size_t)r * 2 * m + j;
    const Elements<T, V> g = load_elements<T, V>(gate), u = load_elements<T, V>(gate + m);
    Elements<T, V> y;
    for (int k = 0; k < V; k++) y.e[k] = from_f32<T>(activation(to_f32(g.e[k]), act) * to_f32(u.e[k]));
    store_elements<T, V>(out + (size_t)r * m + j, y);
}

// vec: outputs per thread, 1 or a 16-byte vector's worth (strata_kernels::gated_act_vector_width).
#define GATED(NAME, T)                                                                             \
    extern "C" __global__ void NAME(const T *x, T *out, uint32_t rows, uint32_t m, uint32_t act,    \
                                    uint32_t vec) {                                                 \
        if (vec == 1)                                                                               \
            gated_act<T, 1>(x, out, rows, m, act);                                                  \
        else                                                                                        \
            gated_act<T, 16 / sizeof(T)>(x, out, rows, m, act);                                     \
    }

GATED(gated_act_f32, float)
GATED(gated_act_bf16, __nv_bfloat16)
GATED(gated_act_f16, __half)
