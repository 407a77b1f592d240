// Host stand-in for CUDA's <mma.h> (the WMMA API) for 16x16x16 tiles of bf16 / f16 with f32
// accumulators. As on the device, a fragment is spread over the warp's 32 lanes, 8 elements each,
// in a layout the API leaves unspecified: here a scrambled one, different for matrix_a, matrix_b
// and accumulators (the same for every fragment of one kind, which the API's load → mma → store
// composition requires). So a kernel that reads or writes fragment elements must find their place
// as the device demands (a fragment loaded from known values), and a fragment store writes only the
// lane's own elements: another lane that reads them without a __syncwarp reads stale memory.
// mma_sync is warp-collective (every lane's operands meet in a per-warp scratch). Products in f32,
// accumulated in f32 over k in order (tensor cores accumulate in f32 in an unspecified order).
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

constexpr int TILE = 16, PER_LANE = TILE * TILE / 32;

// Row-major index in the 16x16 tile of element `e` of `lane`'s part: a bijection scrambled by an
// odd multiplier per fragment kind.
template <typename Use> constexpr int tile_index(unsigned lane, int e) {
    constexpr unsigned mul = __is_same(Use, matrix_a) ? 139 : __is_same(Use, matrix_b) ? 181 : 97;
    return (int)(((lane * PER_LANE + (unsigned)e) * mul + 11) % (TILE * TILE));
}

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
    static_assert(M == TILE && N == TILE && K == TILE, "16x16x16 tiles only");
    static constexpr int num_elements = PER_LANE;
    float x[PER_LANE]; // this lane's elements, values as stored (inputs are exact in f32)
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    for (float &x : f.x) x = value;
}

// matrix_a / matrix_b from T elements with the fragment's own layout (matrix_b is K x N).
template <typename Use, int M, int N, int K, typename T, typename Layout, typename Src>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const Src *p, unsigned ldm) {
    constexpr bool row = __is_same(Layout, row_major);
    check_matrix_pointer(p, ldm);
    const unsigned lane = strata_emulation_lane();
    for (int e = 0; e < PER_LANE; e++) {
        const int i = tile_index<Use>(lane, e), r = i / TILE, c = i % TILE;
        f.x[e] = element_to_float(row ? p[r * ldm + c] : p[c * ldm + r]);
    }
}

// Accumulators from f32 with an explicit memory layout.
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t layout) {
    check_matrix_pointer(p, ldm);
    const unsigned lane = strata_emulation_lane();
    for (int e = 0; e < PER_LANE; e++) {
        const int i = tile_index<accumulator>(lane, e), r = i / TILE, c = i % TILE;
        f.x[e] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
    }
}

template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t layout) {
    check_matrix_pointer(p, ldm);
    const unsigned lane = strata_emulation_lane();
    for (int e = 0; e < PER_LANE; e++) {
        const int i = tile_index<accumulator>(lane, e), r = i / TILE, c = i % TILE;
        (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[e];
    }
}

// The calling warp's scratch for mma_sync: the whole a, b and c tiles, row-major.
struct MmaScratch {
    float a[TILE * TILE], b[TILE * TILE], c[TILE * TILE];
};
inline MmaScratch &warp_scratch() {
    static thread_local MmaScratch scratch[32]; // up to 1024 threads per block; one block at a time
    return scratch[(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) / 32];
}

// d = a · b + c, warp-collective: every lane deposits its parts of a, b and c, then computes its
// part of d from the whole tiles.
template <int M, int N, int K, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
              const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    MmaScratch &s = warp_scratch();
    const unsigned lane = strata_emulation_lane();
    for (int e = 0; e < PER_LANE; e++) {
        s.a[tile_index<matrix_a>(lane, e)] = a.x[e];
        s.b[tile_index<matrix_b>(lane, e)] = b.x[e];
        s.c[tile_index<accumulator>(lane, e)] = c.x[e];
    }
    strata_emulation::sync_warp();
    float out[PER_LANE];
    for (int e = 0; e < PER_LANE; e++) {
        const int i = tile_index<accumulator>(lane, e), r = i / TILE, col = i % TILE;
        float sum = s.c[i];
        for (int kk = 0; kk < TILE; kk++) sum += s.a[r * TILE + kk] * s.b[kk * TILE + col];
        out[e] = sum;
    }
    strata_emulation::sync_warp(); // every lane has read the scratch before the next mma writes it
    for (int e = 0; e < PER_LANE; e++) d.x[e] = out[e];
}

} // namespace wmma
} // namespace nvcuda
