// Logit-lens statistics in one pass over the vocabulary, without materialising a softmax.
//
// For each row r of `logits` [rows, V] (the unembedded, normed residual of one layer/position):
//   out[r*6 + 0] = rank of the target token (number of tokens with a strictly larger logit; 0 = top-1)
//   out[r*6 + 1] = probability of the target, exp(z_t - lse)
//   out[r*6 + 2] = logit of the target, z_t
//   out[r*6 + 3] = entropy of softmax(z) in nats, log S - T / S (online: S = sum e^{z-m}, T = sum e^{z-m}(z-m))
//   out[r*6 + 4] = KL(final || row) in nats = sum_v p_f (lf_v - z_v) + (sum_v p_f) lse,
//                  with lf = final_logp[final_row[r]] (log-probabilities of the model's output)
//   out[r*6 + 5] = lse = logsumexp(z) (online, rescaled when the running max grows)
// idx[r*2 + 0] = target token, idx[r*2 + 1] = final row. One block per row; CPU twin:
// strata_kernels::lens_stats_cpu (crates/strata-kernels/src/lens.rs).
#include "common.cuh"
#include <math.h>

#define LENS_THREADS 256

struct LensAcc {
    float m;      // running max of finite logits (-inf while none seen)
    float s;      // sum e^{z-m}
    float t;      // sum e^{z-m} (z-m)
    float pz;     // sum p_f (lf - z)
    float ps;     // sum p_f
    unsigned int above;  // count z > z_target
};

__device__ __forceinline__ void acc_push(LensAcc &a, float z) {
    if (z == -INFINITY) return;
    if (a.s == 0.0f) { a.m = z; a.s = 1.0f; a.t = 0.0f; return; }
    if (z > a.m) {
        float e = expf(a.m - z);
        a.t = e * (a.t + a.s * (a.m - z));
        a.s = a.s * e + 1.0f;
        a.m = z;
    } else {
        float d = z - a.m;
        float e = expf(d);
        a.s += e;
        a.t += e * d;
    }
}

__device__ __forceinline__ void acc_merge(LensAcc &a, const LensAcc &b) {
    a.pz += b.pz;
    a.ps += b.ps;
    a.above += b.above;
    if (b.s == 0.0f) return;
    if (a.s == 0.0f) { a.m = b.m; a.s = b.s; a.t = b.t; return; }
    float m = fmaxf(a.m, b.m);
    float ea = expf(a.m - m), eb = expf(b.m - m);
    float t = ea * (a.t + a.s * (a.m - m)) + eb * (b.t + b.s * (b.m - m));
    a.s = a.s * ea + b.s * eb;
    a.t = t;
    a.m = m;
}

template <typename T>
__device__ void lens_stats(const T *logits, const float *final_logp, const uint32_t *idx, float *out,
                           uint32_t rows, uint32_t vocab) {
    const uint32_t r = blockIdx.x;
    if (r >= rows) return;
    const T *z = logits + (size_t)r * vocab;
    const uint32_t target = idx[2 * r];
    const float *lf = final_logp + (size_t)idx[2 * r + 1] * vocab;
    const float zt = to_f32(z[target]);

    LensAcc a = {-INFINITY, 0.0f, 0.0f, 0.0f, 0.0f, 0u};
    for (uint32_t v = threadIdx.x; v < vocab; v += blockDim.x) {
        const float zv = to_f32(z[v]);
        acc_push(a, zv);
        a.above += zv > zt ? 1u : 0u;
        const float l = lf[v];
        if (l != -INFINITY) {
            const float p = expf(l);
            a.pz += p * (l - zv);
            a.ps += p;
        }
    }
    __shared__ LensAcc sh[LENS_THREADS];
    sh[threadIdx.x] = a;
    __syncthreads();
    for (uint32_t stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) acc_merge(sh[threadIdx.x], sh[threadIdx.x + stride]);
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const LensAcc f = sh[0];
        const float lse = f.m + logf(f.s);
        float *o = out + (size_t)r * 6;
        o[0] = (float)f.above;
        o[1] = expf(zt - lse);
        o[2] = zt;
        o[3] = logf(f.s) - f.t / f.s;
        o[4] = f.pz + f.ps * lse;
        o[5] = lse;
    }
}

#define LENS(NAME, T)                                                                              \
    extern "C" __global__ void __launch_bounds__(LENS_THREADS)                                     \
    NAME(const T *logits, const float *final_logp, const uint32_t *idx, float *out, uint32_t rows,  \
         uint32_t vocab) {                                                                         \
        lens_stats<T>(logits, final_logp, idx, out, rows, vocab);                                  \
    }

LENS(lens_stats_f32, float)
LENS(lens_stats_bf16, __nv_bfloat16)
LENS(lens_stats_f16, __half)
