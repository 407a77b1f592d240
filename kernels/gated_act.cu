// Gated MLP activation from the fused gate|up projection, in one pass:
//   out[r, j] = act(x[r, j]) * x[r, m + j]      x [rows, 2m] contiguous, out [rows, m]
// act: 0 silu, 1 gelu (tanh approximation), 2 gelu (erf), 3 relu — candle's f32 definitions.
// Math in f32, stored in x's dtype. CPU twin: strata_kernels::gated_act_cpu.
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

template <typename T>
__device__ void gated_act(const T *x, T *out, uint32_t rows, uint32_t m, uint32_t act) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * m) return;
    const size_t r = i / m, j = i % m;
    const T *row = x + r * 2 * m;
    out[i] = from_f32<T>(activation(to_f32(row[j]), act) * to_f32(row[m + j]));
}

#define GATED(NAME, T)                                                                             \
    extern "C" __global__ void NAME(const T *x, T *out, uint32_t rows, uint32_t m, uint32_t act) { \
        gated_act<T>(x, out, rows, m, act);                                                        \
    }

GATED(gated_act_f32, float)
GATED(gated_act_bf16, __nv_bfloat16)
GATED(gated_act_f16, __half)
