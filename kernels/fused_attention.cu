// Attention of every query in one kernel, without the [B, H, P, N] scores and pattern in memory
// (replaces q·kᵀ, masked softmax and ·v as three kernels with two score-sized intermediates):
//   z[b, i, h, :] = Σ_j softmax_j(softcap(q[b,h,i,:]·k[b,g,j,:] · scale) + mask[b % MB, 0, i, j]) · v[b,g,j,:]
// with g = h / (H / G) (grouped-query attention). q [B, H, P, E], k and v [B, G, N, E] contiguous in
// bf16 or f16, mask f32 [MB, 1, P, N] (0 or -inf as the decoder builds it, finite biases allowed;
// MB = B or 1), z [B, P, H, E] in q's type: the layout the output projection reads. A query that
// sees no key gets z = 0.
//
// One block of 4 warps per (64-query tile, head, batch row); each warp owns 16 queries and walks
// the keys once, in tiles of 32 (16 at head dim 256), with an online softmax (as flash
// attention): per tile, the row's running max grows to cover the tile, the accumulators of p·v
// are rescaled by exp(old - new max) and the tile's p = exp(x - max), rounded to the storage
// type, times v is added; z = accumulators / sum of exponentials at the end. (The composite path
// rounds p after dividing by the sum: the results differ by rounding only.) Products on tensor
// cores (WMMA 16x16x16, f32 accumulation); softmax math in f32. What each warp's 16 queries see
// of each key tile comes from `attention_tile_classes`, run before on the same mask (once per
// mask row, not once per head): unseen (skipped when no warp of the block sees the tile: causal
// future, padding, outside a sliding window), partly seen (the scores add the mask, read here)
// or fully seen (all zeros: the scores need no mask, as the tiles below a causal diagonal). The
// next seen tile's K and V are copied asynchronously (cp.async, sm_80+) into a second buffer
// while the current tile is multiplied. Shared rows are padded by 16 bytes: a fragment load
// reads 16 bytes from each of 8 rows at once, and rows E * 2 bytes apart (a multiple of 128)
// would all fall in the same banks (8-way conflict).
// Up to head dim 128 the block's queries stay in registers as tensor-core fragments; at 256 they
// and the 16 accumulators would not fit, so Q stays in dynamic shared memory (33 KB, more than a
// static array may have with the rest; strata_kernels::fused_attention_dynamic_shared_bytes).
// CPU twin: strata_kernels::fused_attention_cpu.
#include "common.cuh"
#include <cuda_pipeline_primitives.h>
#include <math.h>
#include <mma.h>

using namespace nvcuda;
using Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

#define FA_WARPS 4
#define FA_THREADS (FA_WARPS * 32)
#define FA_BQ (FA_WARPS * 16) // queries per block
#define FA_MAX_TILES 256      // key tiles whose classes are kept in shared memory; later ones are always computed
#define FA_PAD 8              // elements (16 bytes) after each shared row of Q, K, V and p
#define TILE_UNSEEN 0         // no query of the warp sees a key of the tile
#define TILE_PART 1           // some keys are seen: the scores add the mask
#define TILE_FULL 2           // every query of the warp sees every key (mask all zeros there)

// rows x E elements of `src` (row-major) into shared `dst`, rows E + FA_PAD apart; rows from
// `valid` on are zeros. Asynchronous 16-byte copies (cp.async: complete once the thread has
// committed them and waited) when `src` is 16-byte aligned (E is a multiple of 8), plain element
// stores otherwise.
template <typename T, int E>
__device__ __forceinline__ void load_tile(T *dst, const T *src, uint32_t rows, uint32_t valid) {
    static_assert(sizeof(T) == 2 && E % 8 == 0, "16-bit elements, rows of whole 16-byte vectors");
    if (((uintptr_t)src & 15) == 0) {
        constexpr uint32_t per_row = E * sizeof(T) / 16, ld = (E + FA_PAD) * sizeof(T) / 16;
        const uint4 *s = reinterpret_cast<const uint4 *>(src);
        uint4 *d = reinterpret_cast<uint4 *>(dst);
        for (uint32_t i = threadIdx.x; i < rows * per_row; i += FA_THREADS) {
            const uint32_t r = i / per_row;
            // a row past the end reads nothing and is zero-filled
            __pipeline_memcpy_async(d + r * ld + i % per_row, r < valid ? s + i : s, 16, r < valid ? 0 : 16);
        }
    } else {
        for (uint32_t i = threadIdx.x; i < rows * E; i += FA_THREADS) {
            const uint32_t r = i / E;
            dst[r * (E + FA_PAD) + i % E] = r < valid ? src[i] : from_f32<T>(0.0f);
        }
    }
    __pipeline_commit();
}

// What the 16 queries of each row group (queries 16r..16r+15) see of each key tile of `tile_keys`
// keys (TILE_UNSEEN, TILE_PART or TILE_FULL; rows past the end count as full, as they are never
// written): classes [mask rows, ceil(p_len / 16), ceil(n_len / tile_keys)] of mask f32
// [mask rows, 1, p_len, n_len]. One block of FA_WARPS warps per (row group, mask row), a warp per
// tile; the lanes read a query row's keys side by side, the 16 rows' loads in flight together.
extern "C" __global__ void __launch_bounds__(FA_THREADS)
    attention_tile_classes(const float *mask, unsigned char *classes, uint32_t p_len, uint32_t n_len,
                           uint32_t tile_keys) {
    const uint32_t group = blockIdx.x, r0 = group * 16, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint32_t n_tiles = (n_len + tile_keys - 1) / tile_keys, rows = p_len - r0 < 16 ? p_len - r0 : 16;
    const float *m = mask + ((size_t)blockIdx.y * p_len + r0) * n_len;
    for (uint32_t t = warp; t < n_tiles; t += FA_WARPS) {
        // lane c reads key t · tile_keys + c (tile_keys ≤ 32; lanes past it read nothing)
        const uint32_t j = t * tile_keys + lane;
        const bool key = lane < tile_keys && j < n_len;
        bool lane_sees = false, lane_full = true;
#pragma unroll
        for (uint32_t r = 0; r < 16; r++) {
            const float x = r >= rows || lane >= tile_keys ? 0.0f : key ? m[(size_t)r * n_len + j] : -INFINITY;
            lane_sees |= r < rows && x != -INFINITY;
            lane_full &= x == 0.0f;
        }
        const bool sees = __any_sync(0xffffffff, lane_sees), full = !__any_sync(0xffffffff, !lane_full);
        if (lane == 0)
            classes[((size_t)blockIdx.y * gridDim.x + group) * n_tiles + t] = !sees ? TILE_UNSEEN : full ? TILE_FULL : TILE_PART;
    }
}

// Keys per tile (BK): 32, or 16 at head dim 256, where two buffers of 32 keys' K and V would not
// fit beside Q on GPUs with 99 KB of shared memory per block (compute capability 8.6, 8.9).
#define FA_TILE_KEYS(E) ((E) > 128 ? 16 : 32)

template <typename T, int E, int BK>
__device__ void fused_attention(const T *q, const T *k, const T *v, const float *mask,
                                const unsigned char *classes, T *z, uint32_t heads,
                                uint32_t groups, uint32_t p_len, uint32_t n_len, uint32_t mask_batch, float scale,
                                float cap) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    // bf16 tensor cores and cp.async need compute capability 8.0: built for an older GPU, the entry
    // points exist but trap; strata_kernels::fused_attention_supported keeps the decoder off them.
    __trap();
#else
    // Row strides of the f32 score tile and of p (WMMA ldm: multiples of 16 bytes).
    constexpr uint32_t S_LD = BK + 4, P_LD = BK + FA_PAD;
    constexpr bool Q_SHARED = E > 128;
    // Two buffers of a key tile's K and V (rows LD apart): the next tile's copies are in flight
    // while the current one is multiplied. The first buffer stages Q before the loop, unless Q
    // stays in shared memory.
    constexpr uint32_t LD = E + FA_PAD, KV = 2 * BK * LD;
    static_assert(Q_SHARED || FA_BQ * LD <= KV, "Q staging fits in one K/V buffer");
    __shared__ __align__(32) T kv[2][KV];
    // Per warp: the f32 scores of a tile, then (same memory, once read) its p in the storage type;
    // 16 columns at least, for the row numbers and z on their way out.
    static_assert(BK >= 16 && 16 * P_LD * sizeof(T) <= 16 * S_LD * sizeof(float), "p fits in the score tile");
    __shared__ __align__(32) float s_tile[FA_WARPS][16 * S_LD];
    __shared__ float row_factor[FA_WARPS][16]; // per query row: this tile's rescale, at the end 1 / sum
    // What the warp's queries see of each key tile: TILE_UNSEEN, TILE_PART or TILE_FULL.
    __shared__ unsigned char sees[FA_WARPS][FA_MAX_TILES];

    const uint32_t b = blockIdx.z, h = blockIdx.y, g = h / (heads / groups);
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint32_t q0 = blockIdx.x * FA_BQ, wq0 = q0 + warp * 16;
    const T *qb = q + (size_t)(b * heads + h) * p_len * E;
    const T *kb = k + (size_t)(b * groups + g) * n_len * E;
    const T *vb = v + (size_t)(b * groups + g) * n_len * E;
    const float *mb = mask + (size_t)(b % mask_batch) * p_len * n_len;
    T *p_tile = reinterpret_cast<T *>(s_tile[warp]);

    // The block's queries (zeros past the end) on their way into shared memory while the key
    // tiles' classes are read; then into fragments kept for every key tile, or kept in shared
    // memory (head dim 256) and loaded into fragments as each product needs them.
    using QueryFragment = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
    DYNAMIC_SHARED(T, q_shared);
    if (Q_SHARED && dynamic_shared_bytes() < FA_BQ * LD * sizeof(T)) __trap(); // launched without room for Q
    T *q_tile = Q_SHARED ? q_shared : kv[0];
    load_tile<T, E>(q_tile, qb + (size_t)q0 * E, FA_BQ, p_len - q0);

    // Which key tiles each warp's queries see (a tile no warp of the block sees is skipped); a warp
    // past the last query sees none.
    const uint32_t n_tiles = (n_len + BK - 1) / BK, known = n_tiles < FA_MAX_TILES ? n_tiles : FA_MAX_TILES;
    const uint32_t row_groups = (p_len + 15) / 16;
    const unsigned char *cb = classes + (size_t)(b % mask_batch) * row_groups * n_tiles;
    for (uint32_t i = threadIdx.x; i < FA_WARPS * known; i += FA_THREADS) {
        const uint32_t w = i / known, t = i % known, group = blockIdx.x * FA_WARPS + w;
        sees[w][t] = group < row_groups ? cb[(size_t)group * n_tiles + t] : TILE_UNSEEN;
    }
    __pipeline_wait_prior(0);
    __syncthreads();
    QueryFragment qf[Q_SHARED ? 1 : E / 16];
    if constexpr (!Q_SHARED)
        for (int kk = 0; kk < E / 16; kk++) wmma::load_matrix_sync(qf[kk], q_tile + warp * 16 * LD + kk * 16, LD);

    // This lane's query row and its half of a tile's columns, col(c) = 2c + lane % 2 (interleaved:
    // the lanes' reads of a score row fall in different banks).
    const uint32_t row = lane / 2, odd = lane % 2, qi = wq0 + row;
    const float *mrow = mb + (size_t)qi * n_len;

    // Which row of the warp's 16 queries each element of an accumulator fragment held by this lane
    // belongs to. The device spreads fragments over the lanes in an unspecified layout, the same
    // for every fragment of one type, so a fragment loaded from a matrix of row numbers tells.
    Accumulator row_of;
    for (uint32_t i = lane; i < 256; i += 32) s_tile[warp][i / 16 * S_LD + i % 16] = (float)(i / 16);
    __syncwarp();
    wmma::load_matrix_sync(row_of, s_tile[warp], S_LD, wmma::mem_row_major);
    __syncthreads(); // `sees` complete; row numbers and every warp's Q fragments loaded

    // The next key tile after `t` that some query of the block sees (n_tiles: none). The same for
    // every thread of the block.
    auto next_seen = [&](uint32_t t) {
        while (t < n_tiles && t < FA_MAX_TILES && !(sees[0][t] | sees[1][t] | sees[2][t] | sees[3][t])) t++;
        return t;
    };
    static_assert(FA_WARPS == 4, "next_seen reads four warps' flags");
    auto load_kv = [&](uint32_t t, int buf) {
        const uint32_t n0 = t * BK;
        load_tile<T, E>(kv[buf], kb + (size_t)n0 * E, BK, n_len - n0);
        load_tile<T, E>(kv[buf] + BK * LD, vb + (size_t)n0 * E, BK, n_len - n0);
    };

    // Running max and sum of exponentials of this lane's query row over the keys so far; the
    // accumulators hold Σ exp(x - max) · v for that max and are rescaled when it grows.
    float row_max = -INFINITY, row_sum = 0.0f;
    Accumulator of[E / 16];
    for (int j = 0; j < E / 16; j++) wmma::fill_fragment(of[j], 0.0f);

    uint32_t t = next_seen(0);
    if (t < n_tiles) load_kv(t, 0);
    for (int buf = 0; t < n_tiles; buf ^= 1) {
        const uint32_t next = next_seen(t + 1), n0 = t * BK;
        if (next < n_tiles) {
            load_kv(next, buf ^ 1); // into the buffer every thread finished with last iteration
            __pipeline_wait_prior(2); // this tile's K and V batches done, the next tile's in flight
        } else {
            __pipeline_wait_prior(0);
        }
        __syncthreads(); // every thread's copies of this tile visible to all
        const T *kt = kv[buf], *vt = kv[buf] + BK * LD;
        const unsigned char seen = t < FA_MAX_TILES ? sees[warp][t] : TILE_PART;
        if (seen != TILE_UNSEEN) {
            // S = Q Kᵀ for the warp's 16 queries and the tile's keys, f32.
            for (int cb = 0; cb < BK / 16; cb++) {
                Accumulator sf;
                wmma::fill_fragment(sf, 0.0f);
                for (int kk = 0; kk < E / 16; kk++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                    wmma::load_matrix_sync(kf, kt + cb * 16 * LD + kk * 16, LD);
                    if constexpr (Q_SHARED) {
                        wmma::load_matrix_sync(qf[0], q_tile + warp * 16 * LD + kk * 16, LD);
                        wmma::mma_sync(sf, qf[0], kf, sf);
                    } else {
                        wmma::mma_sync(sf, qf[kk], kf, sf);
                    }
                }
                wmma::store_matrix_sync(s_tile[warp] + cb * 16, sf, S_LD, wmma::mem_row_major);
            }
            __syncwarp();
            float x[BK / 2], tile_max = -INFINITY;
            for (uint32_t c = 0; c < BK / 2; c++) {
                const uint32_t j = n0 + 2 * c + odd;
                float val = s_tile[warp][row * S_LD + 2 * c + odd] * scale;
                if (cap > 0.0f) val = tanhf(val * (1.0f / cap)) * cap;
                x[c] = qi >= p_len || j >= n_len ? -INFINITY : seen == TILE_FULL ? val : val + mrow[j];
                tile_max = fmaxf(tile_max, x[c]);
            }
            tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, 1));
            const float new_max = fmaxf(row_max, tile_max);
            __syncwarp(); // every lane has read its scores before p overwrites them
            // p = exp(x - max) in the storage type for the tensor cores; the sum in f32. While the
            // row has seen no key, max is -inf, every p is 0 and so are the accumulators. __expf
            // (one ex2.approx; relative error ~1e-6 for these arguments ≤ 0) instead of expf's
            // exact sequence: p is rounded to 8 (bf16) or 11 (f16) bits anyway.
            float sum = 0.0f;
            for (uint32_t c = 0; c < BK / 2; c++) {
                const float p = x[c] == -INFINITY ? 0.0f : __expf(x[c] - new_max);
                sum += p;
                p_tile[row * P_LD + 2 * c + odd] = from_f32<T>(p);
            }
            sum += __shfl_xor_sync(0xffffffff, sum, 1);
            // The accumulators need rescaling only where a row's max grew past a finite one (before
            // its first seen key they are 0); when no row of the warp grew, the pass is skipped.
            const bool grew = row_max != -INFINITY && new_max > row_max;
            const float rescale = grew ? __expf(row_max - new_max) : 1.0f;
            row_sum = row_sum * rescale + sum;
            row_max = new_max;
            if (odd == 0) row_factor[warp][row] = rescale;
            const bool any_grew = __any_sync(0xffffffff, grew);
            __syncwarp();
            if (any_grew) {
                float factor[Accumulator::num_elements]; // of this lane's elements' rows
                for (int i = 0; i < Accumulator::num_elements; i++) factor[i] = row_factor[warp][(int)row_of.x[i]];
                for (int j = 0; j < E / 16; j++)
                    for (int i = 0; i < Accumulator::num_elements; i++) of[j].x[i] *= factor[i];
            }
            for (int kk = 0; kk < BK / 16; kk++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf;
                wmma::load_matrix_sync(pf, p_tile + kk * 16, P_LD);
                for (int j = 0; j < E / 16; j++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                    wmma::load_matrix_sync(vf, vt + kk * 16 * LD + j * 16, LD);
                    wmma::mma_sync(of[j], pf, vf, of[j]);
                }
            }
        }
        __syncthreads(); // this buffer, s_tile and row_factor read before they are written again
        t = next;
    }
    // z = accumulators / sum for the warp's valid queries (0 for a query that sees no key), one
    // 16x16 fragment at a time through s_tile.
    if (odd == 0) row_factor[warp][row] = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
    for (int j = 0; j < E / 16; j++) {
        wmma::store_matrix_sync(s_tile[warp], of[j], S_LD, wmma::mem_row_major);
        __syncwarp();
        for (uint32_t i = lane; i < 256; i += 32) {
            const uint32_t r = i / 16, c = i % 16;
            if (wq0 + r < p_len)
                z[(((size_t)b * p_len + wq0 + r) * heads + h) * E + j * 16 + c] =
                    from_f32<T>(s_tile[warp][r * S_LD + c] * row_factor[warp][r]);
        }
        __syncwarp();
    }
#endif
}

// Registers for FA_MIN_BLOCKS(E) blocks of 128 threads per SM, more warps to hide the latency of
// each warp's chain of shared-memory round trips. On compute capability 9.0: 65536 / (4 · 128) =
// 128 at head dim 64 (four blocks), 170 at 96 and 128 (three: 128 would spill), 255 at 256 (two).
// On an H200, four blocks instead of two took the kernel from 0.51 to 0.41 ms at head dim 64,
// three from 0.80 to 0.57 ms at 128 (8 x 512 tokens, bench/fa-variants-2026-11-27-h200.txt).
// Older GPUs keep two blocks (up to 255 registers): for them ptxas spills at three and four.
// Left to itself ptxas caps bf16 E=64 at 128 registers and spills; with the bound it does not.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FA_MIN_BLOCKS(E) ((E) > 128 ? 2 : (E) > 64 ? 3 : 4)
#else
#define FA_MIN_BLOCKS(E) 2
#endif
#define FUSED_ATTENTION(NAME, T, E)                                                                 \
    extern "C" __global__ void __launch_bounds__(FA_THREADS, FA_MIN_BLOCKS(E))                     \
    NAME(const T *q, const T *k, const T *v, const float *mask, const unsigned char *classes, T *z,  \
         uint32_t heads, uint32_t groups, uint32_t p_len, uint32_t n_len, uint32_t mask_batch, float scale, \
         float cap) {                                                                               \
        fused_attention<T, E, FA_TILE_KEYS(E)>(q, k, v, mask, classes, z, heads, groups, p_len, n_len, \
                                               mask_batch, scale, cap);                             \
    }

// Head dims of the supported families (strata_kernels::FUSED_ATTENTION_HEAD_DIMS).
FUSED_ATTENTION(fused_attention_bf16_64, __nv_bfloat16, 64)
FUSED_ATTENTION(fused_attention_bf16_96, __nv_bfloat16, 96)
FUSED_ATTENTION(fused_attention_bf16_128, __nv_bfloat16, 128)
FUSED_ATTENTION(fused_attention_bf16_256, __nv_bfloat16, 256)
FUSED_ATTENTION(fused_attention_f16_64, __half, 64)
FUSED_ATTENTION(fused_attention_f16_96, __half, 96)
FUSED_ATTENTION(fused_attention_f16_128, __half, 128)
FUSED_ATTENTION(fused_attention_f16_256, __half, 256)
