// Host stand-in for CUDA's <mma.h> (the WMMA API) for 16x16x16 tiles of bf16 / f16 with f32
// accumulators. The device spreads a fragment over the warp's lanes in an unspecified layout, so
// kernels may only move whole fragments (load, store, fill, mma); here every lane holds the whole
// tile in row-major order, which no such kernel can tell apart. Products in f32, accumulated in
// f32 over k in order (tensor cores accumulate in f32 in an unspecified order). One consequence:
// every lane's store writes the whole tile, so a missing __syncwarp between a fragment store and
// other lanes' reads of it goes unnoticed here (the GPU test would see it).
#pragma once
#include "cuda_emulation.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

// CUDA's contract for every fragment load and store: "mptr must be a 256-bit aligned pointer"
// and ldm "a multiple of 8 for __half element type or multiple of 4 for float" (16 bytes); the
// device's behaviour otherwise is undefined, the host's would be silently right.
template <typename E> void check_matrix_pointer(const E *p, unsigned ldm) {
    if ((uintptr_t)p % 32 != 0) strata_emulation::fault("WMMA load/store: matrix pointer not 32-byte aligned");
    if (ldm * sizeof(E) % 16 != 0) strata_emulation::fault("WMMA load/store: ldm not a multiple of 16 bytes");
}

inline float element_to_float(float x) { return x; }
inline float element_to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
inline float element_to_float(__half x) { return __half2float(x); }

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static constexpr int rows = __is_same(Use, matrix_b) ? K : M;
    static constexpr int cols = __is_same(Use, matrix_a) ? K : N;
    static constexpr int num_elements = rows * cols;
    float x[rows * cols]; // row-major, values as stored (inputs are exact in f32)
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    for (float &x : f.x) x = value;
}

// matrix_a / matrix_b from T elements with the fragment's own layout.
template <typename Use, int M, int N, int K, typename T, typename Layout, typename Src>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const Src *p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, Layout>;
    constexpr bool row = __is_same(Layout, row_major);
    check_matrix_pointer(p, ldm);
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) f.x[r * F::cols + c] = element_to_float(row ? p[r * ldm + c] : p[c * ldm + r]);
}

// Accumulators from f32 with an explicit memory layout.
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t layout) {
    check_matrix_pointer(p, ldm);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t layout) {
    check_matrix_pointer(p, ldm);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * N + c];
}

// d = a · b + c
template <int M, int N, int K, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
              const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.x[i * N + j];
            for (int kk = 0; kk < K; kk++) s += a.x[i * K + kk] * b.x[kk * N + j];
            out[i * N + j] = s;
        }
    for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}

} // namespace wmma
} // namespace nvcuda
