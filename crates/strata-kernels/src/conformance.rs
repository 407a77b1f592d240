//! What every implementation of a kernel must reproduce: its CPU twin, on cases chosen to cross
//! the kernel's block sizes and register caches, for f32, bf16 and f16, within tolerances that
//! allow only summation order, FMA contraction, math-library rounding and the storage type's
//! last unit.
//!
//! Shared by the two places a CUDA kernel runs: the `gpu_*` tests (the PTX on a GPU) and the
//! `strata-kernel-emulator` tests (the same `kernels/*.cu` source compiled for the CPU, so that
//! a machine without a GPU still runs every kernel's code). Each check takes the implementation
//! under test as a closure over CPU tensors — it moves them wherever it runs — and panics
//! naming the case and dtype that differ.
use candle_core::{DType, Device, Result, Tensor};

use crate::testing::{assert_close, max_abs_diff};
use crate::{lens_stats_cpu, scatter_patches_cpu, GatedAct, HeadNorm, HeadSlice, LensRow, Rotary};

const DTYPES: [DType; 3] = [DType::F32, DType::BF16, DType::F16];

/// `amplitude · sin(0.37 i + seed)`: smooth test data with both signs.
pub fn wave(n: usize, seed: f32, amplitude: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.37 + seed).sin() * amplitude)
        .collect()
}

fn tensor(v: Vec<f32>, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// `t` as a contiguous view `offset` elements into a larger storage.
fn offset_view(t: &Tensor, offset: usize) -> Tensor {
    crate::testing::at_storage_offset(t, offset).unwrap()
}

/// Deterministic pseudo-random logits in [-12, 12).
pub(crate) fn sample_logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..rows * vocab)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (((x >> 33) as f64 / (1u64 << 31) as f64) * 24.0 - 12.0) as f32
        })
        .collect()
}

/// log-softmax of one row in f64.
pub(crate) fn log_softmax_naive(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let sum: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
    z.iter().map(|&v| v as f64 - m - sum.ln()).collect()
}

/// A tensor's values as stored (bf16/f16 rounding included), flattened, in f32.
pub(crate) fn stored_values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// A lens case: `rows` rows of logits (a tie with the first row's target, a -inf), two final
/// log-distributions (one with a -inf token), per-row targets and final rows.
pub(crate) fn lens_case(rows: usize, vocab: usize) -> (Vec<f32>, Vec<f32>, Vec<u32>, Vec<u32>) {
    let mut z = sample_logits(rows, vocab, 7);
    z[3] = z[5];
    z[vocab + 1] = f32::NEG_INFINITY;
    let mut fin = Vec::new();
    for f in sample_logits(2, vocab, 11).chunks(vocab) {
        fin.extend(log_softmax_naive(f).into_iter().map(|v| v as f32));
    }
    fin[2] = f32::NEG_INFINITY; // a token the model never predicts
    let targets: Vec<u32> = (0..rows as u32)
        .map(|r| if r == 0 { 5 } else { (r * 37) % vocab as u32 })
        .collect();
    let finals: Vec<u32> = (0..rows as u32).map(|r| r % 2).collect();
    (z, fin, targets, finals)
}

/// Same ranks; every other statistic within `tol` relative (`|a − b| ≤ tol · (1 + |b|)`).
pub(crate) fn assert_rows_close(got: &[LensRow], want: &[LensRow], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.rank, w.rank, "{what} row {i}: rank {g:?} vs {w:?}");
        for (name, a, b) in [
            ("prob", g.prob, w.prob),
            ("logit", g.logit, w.logit),
            ("entropy", g.entropy, w.entropy),
            ("kl", g.kl, w.kl),
            ("logsumexp", g.logsumexp, w.logsumexp),
        ] {
            assert!(
                a == b || (a - b).abs() <= tol * (1.0 + b.abs()),
                "{what} row {i}: {name} {a} vs {b}\n{g:?}\n{w:?}"
            );
        }
    }
}

/// `run(logits [rows, V], final_logp [2, V], targets, final_rows)` against `lens_stats_cpu` on
/// the logits as stored (bf16/f16 rounded), at real vocabulary sizes.
pub fn lens_stats(run: impl Fn(&Tensor, &Tensor, &[u32], &[u32]) -> Result<Vec<LensRow>>) {
    for (rows, vocab) in [(9, 1000), (64, 49_152), (3, 262_144)] {
        let (z, fin, targets, finals) = lens_case(rows, vocab);
        let ft = tensor(fin.clone(), &[2, vocab], DType::F32);
        for dt in DTYPES {
            let zt = tensor(z.clone(), &[rows, vocab], dt);
            let want = lens_stats_cpu(&stored_values(&zt), vocab, &fin, &targets, &finals);
            let got = run(&zt, &ft, &targets, &finals).unwrap();
            // exp/log rounding over up to 262 144 terms in another order
            assert_rows_close(&got, &want, 1e-4, &format!("lens_stats {dt:?} {rows}x{vocab}"));
        }
    }
}

/// `run(dst [20, 24, 2048], values [20, 2048], rows, positions)` returns the patched `dst`:
/// exactly `scatter_patches_cpu`'s.
pub fn scatter_patches(run: impl Fn(&Tensor, &Tensor, &[u32], &[u32]) -> Result<Tensor>) {
    let (b, t, d) = (20, 24, 2048);
    let rows: Vec<u32> = (0..20).collect();
    let pos: Vec<u32> = (0..20).map(|r| (r * 7) % 24).collect();
    let ramp = |n: usize, start: f32| (0..n).map(|i| start + i as f32 * 0.5).collect::<Vec<_>>();
    let (base, vals) = (ramp(b * t * d, 0.0), ramp(20 * d, -3.0));
    let mut want = base.clone();
    scatter_patches_cpu(&mut want, t, d, &vals, &rows, &pos);
    for dt in DTYPES {
        let got = run(
            &tensor(base.clone(), &[b, t, d], dt),
            &tensor(vals.clone(), &[20, d], dt),
            &rows,
            &pos,
        )
        .unwrap();
        let want = tensor(want.clone(), &[b, t, d], dt);
        assert_eq!(max_abs_diff(&got, &want), 0.0, "scatter_patches {dt:?}");
    }
}

/// `run(x [37, 2·1000], act)` (gate | up) against the CPU twin, for every activation.
pub fn gated_act(run: impl Fn(&Tensor, GatedAct) -> Result<Tensor>) {
    // m = 1000 takes the kernel's 16-byte vectors, m = 1001 and a view 3 elements into its
    // storage one element per thread.
    for (m, offset) in [(1000, 0), (1001, 0), (1000, 3)] {
        let rows = 37;
        for dt in DTYPES {
            let x = offset_view(&tensor(wave(rows * 2 * m, 0.9, 5.0), &[rows, 2 * m], dt), offset);
            for act in GatedAct::ALL {
                let want = crate::gated_act(&x, act).unwrap();
                // f32: libm vs CUDA math functions (a few ulp); bf16/f16: one ulp at |y| < 32
                let what = format!("gated_act {act:?} m {m} offset {offset}");
                assert_close(
                    &run(&x, act).unwrap(),
                    &want,
                    dt,
                    [1e-6 * 32.0, 0.25, 0.032],
                    &what,
                );
            }
        }
    }
}

/// Causal mask `[mb, 1, q, k]` (the queries are the last `q` of `k` positions) whose odd batch
/// rows also hide key 0 from their last query (a padding key).
pub fn causal_mask(mb: usize, q: usize, k: usize) -> Vec<f32> {
    let mut m = vec![0f32; mb * q * k];
    for b in 0..mb {
        for qi in 0..q {
            for ki in 0..k {
                if ki > qi + (k - q) || (qi == q - 1 && ki == 0 && b % 2 == 1) {
                    m[(b * q + qi) * k + ki] = f32::NEG_INFINITY;
                }
            }
        }
    }
    m
}

/// Masks of the fused-attention cases.
#[derive(Clone, Copy)]
enum AttentionMask {
    Causal,
    /// A sliding window over left-padded rows (window, padding of odd rows; [`window_mask`]).
    Window(usize, usize),
    /// Causal with a finite bias on every visible key.
    Biased,
}

/// The decoder's mask of `mb` left-padded rows of `n` tokens (`pad` padding tokens in odd rows)
/// with a sliding `window`: a real query sees the real keys among the last `window` positions,
/// a padding query only itself (`TokenBatch::attention_bias`).
fn window_mask(mb: usize, n: usize, window: usize, pad: usize) -> Vec<f32> {
    let mut m = vec![f32::NEG_INFINITY; mb * n * n];
    for b in 0..mb {
        let first_real = if b % 2 == 1 { pad } else { 0 };
        for qi in 0..n {
            for ki in 0..=qi {
                let sees = if qi < first_real {
                    ki == qi
                } else {
                    ki >= first_real && qi - ki < window
                };
                if sees {
                    m[(b * n + qi) * n + ki] = 0.0;
                }
            }
        }
    }
    m
}

/// `run(scores [b, h, q, k], mask [mb, 1, q, k], scale, softcap)` against the CPU twin, with
/// rows shorter and longer than the kernel's register cache (128 threads × 16 values).
pub fn masked_softmax(run: impl Fn(&Tensor, &Tensor, f32, Option<f32>) -> Result<Tensor>) {
    for ((b, h, q, k), mb, cap) in [
        ((2, 4, 33, 33), 2, None),
        ((3, 2, 7, 600), 1, Some(50.0f32)),
        ((1, 2, 3, 5000), 1, None),
    ] {
        let mask = tensor(causal_mask(mb, q, k), &[mb, 1, q, k], DType::F32);
        for dt in DTYPES {
            let s = tensor(wave(b * h * q * k, 0.7, 9.0), &[b, h, q, k], dt);
            let want = crate::masked_softmax(&s, &mask, 0.125, cap).unwrap();
            // f32: summation order and the math library's exp/tanh (~1e-6 of p ≤ 1);
            // bf16/f16: one ulp of p ≤ 1
            let what = format!("masked_softmax [{b}, {h}, {q}, {k}]");
            let got = run(&s, &mask, 0.125, cap).unwrap();
            assert_close(&got, &want, dt, [1e-6, 0.004, 0.0005], &what);
        }
    }
}

/// `run(x [rows, d], weight [d], bias, eps)` (RMSNorm without a bias, LayerNorm with one)
/// against the CPU twin, for widths below, at and above the kernel's 256 threads.
pub fn row_norm(run: impl Fn(&Tensor, &Tensor, Option<&Tensor>, f32) -> Result<Tensor>) {
    for (rows, d) in [(5, 64), (3, 256), (7, 4099)] {
        let shifted = |n, seed| wave(n, seed, 3.0).into_iter().map(|v| v + 0.5).collect();
        let w = tensor(shifted(d, 1.7), &[d], DType::F32);
        let b = tensor(shifted(d, 0.2), &[d], DType::F32);
        for bias in [None, Some(&b)] {
            for dt in DTYPES {
                let x = tensor(shifted(rows * d, 0.9), &[rows, d], dt);
                let want = crate::row_norm(&x, &w, bias, 1e-6).unwrap();
                // f32: summation order (~1e-6 of |y| ≤ 10); bf16/f16: one ulp of |y| ≤ 10
                let what = format!("row_norm [{rows}, {d}] bias {}", bias.is_some());
                assert_close(
                    &run(&x, &w, bias, 1e-6).unwrap(),
                    &want,
                    dt,
                    [1e-5, 0.07, 0.01],
                    &what,
                );
            }
        }
    }
}

/// `run(qkv [3, 17, (8 + 2·2)·e], slice, rotary, norm)` against the CPU twin, head dims 64 and 256:
/// the query heads and the value heads of a grouped-query projection, with full, partial
/// (per-row tables) and no rotary embedding, each without and with a norm of every head (q/k
/// norm; the warp-per-row kernel).
pub fn split_heads(run: impl Fn(&Tensor, HeadSlice, Option<Rotary>, Option<HeadNorm>) -> Result<Tensor>) {
    let (b, p, h, g) = (3, 17, 8, 2);
    for e in [64, 256] {
        let width = (h + 2 * g) * e;
        let slices = [(0, h), ((h + g) * e, g)].map(|(col0, heads)| HeadSlice {
            col0,
            heads,
            head_dim: e,
        });
        let weight = tensor(wave(e, 1.7, 2.0), &[e], DType::F32);
        // x at the start of its storage (16-byte vectors) and 3 elements in (one element per thread)
        for (dt, offset) in DTYPES.into_iter().flat_map(|dt| [(dt, 0), (dt, 3)]) {
            let x = offset_view(&tensor(wave(b * p * width, 0.3, 2.0), &[b, p, width], dt), offset);
            for (rot, dims) in [(e, vec![p, e / 2]), (e / 2, vec![b, p, e / 4]), (0, vec![])] {
                let n: usize = dims.iter().product();
                let cos = tensor(wave(n, 0.7, 2.0), &dims, dt);
                let sin = tensor(wave(n, 2.1, 2.0), &dims, dt);
                let rotary = (rot > 0).then_some(Rotary {
                    cos: &cos,
                    sin: &sin,
                    rotary_dim: rot,
                });
                let norms = [
                    None,
                    Some(HeadNorm {
                        weight: &weight,
                        eps: 1e-6,
                    }),
                ];
                for (s, norm) in slices.into_iter().flat_map(|s| norms.map(|n| (s, n))) {
                    let want = crate::split_heads(&x, s, rotary, norm).unwrap();
                    // f32: the same products (FMA contraction, the order of the sum of squares
                    // may differ, ~1e-6 of |v| ≤ 8); bf16/f16: one ulp
                    let what = format!(
                        "split_heads rot {rot} {s:?} offset {offset} norm {}",
                        norm.is_some()
                    );
                    assert_close(
                        &run(&x, s, rotary, norm).unwrap(),
                        &want,
                        dt,
                        [1e-5, 0.07, 0.01],
                        &what,
                    );
                }
            }
        }
    }
}

/// `run(q [b, h, p, e], k, v [b, g, n, e], mask [mb, 1, p, n], scale, softcap)` (returning
/// `[b, p, h, e]`) against the CPU twin, bf16 and f16 (the kernel's types), every head dim it is
/// built for, with query and key counts that leave partial 64-query and 32- (16-) key tiles,
/// grouped and plain heads, per-row and shared masks, queries that are the last of more keys (a
/// suffix run), soft-capping, sliding windows over left-padded rows (whole key tiles skipped
/// before a query tile's window; padding queries that see only themselves), and finite biases in
/// the mask (the kernel reads the mask for a tile unless it is all zeros there).
pub fn fused_attention(run: impl Fn(&Tensor, &Tensor, &Tensor, &Tensor, f32, Option<f32>) -> Result<Tensor>) {
    use AttentionMask::{Biased, Causal, Window};
    // (shapes, mask rows, soft-cap, scale × √e, mask): the sharp softmaxes move a row's max by
    // tens from one key tile to the next, so every rescaling of the running sums counts.
    for ((b, h, g, p, n, e), mb, cap, sharpness, kind) in [
        ((2, 4, 2, 70, 70, 64), 2, None, 1.0, Causal),
        ((1, 2, 1, 33, 100, 128), 1, Some(50.0f32), 1.0, Causal),
        ((3, 3, 3, 17, 17, 96), 1, None, 1.0, Causal),
        ((1, 2, 2, 40, 300, 64), 1, None, 40.0f32, Causal),
        ((2, 2, 1, 200, 200, 128), 2, None, 1.0, Window(40, 50)),
        ((1, 2, 1, 100, 100, 64), 1, None, 1.0, Biased),
        // head dim 256: queries in shared memory, 16-key tiles
        ((2, 2, 1, 70, 70, 256), 2, Some(30.0), 1.0, Causal),
        ((1, 1, 1, 20, 100, 256), 1, None, 40.0, Causal),
        ((2, 1, 1, 130, 130, 256), 2, None, 8.0, Window(24, 20)),
    ] {
        let mask = match kind {
            Causal => causal_mask(mb, p, n),
            Window(window, pad) => window_mask(mb, n, window, pad),
            // ALiBi-like: causal, and each visible key biased by its distance
            Biased => {
                let mut m = causal_mask(mb, p, n);
                for (i, v) in m.iter_mut().enumerate() {
                    let (qi, ki) = (i / n % p + (n - p), i % n);
                    if v.is_finite() {
                        *v = -0.05 * (qi - ki) as f32;
                    }
                }
                m
            }
        };
        let mask = tensor(mask, &[mb, 1, p, n], DType::F32);
        let scale = sharpness / (e as f32).sqrt();
        for dt in [DType::BF16, DType::F16] {
            let q = tensor(wave(b * h * p * e, 0.4, 1.0), &[b, h, p, e], dt);
            let k = tensor(wave(b * g * n * e, 1.3, 1.0), &[b, g, n, e], dt);
            let v = tensor(wave(b * g * n * e, 2.2, 2.0), &[b, g, n, e], dt);
            let want = crate::fused_attention(&q, &k, &v, &mask, scale, cap).unwrap();
            // p computed from f32 tensor-core sums instead of f64 dot products may round to the
            // neighbouring value (one ulp of p ≤ 1, times |v| ≤ 2, over a few keys)
            let what = format!("fused_attention b{b} h{h} g{g} p{p} n{n} e{e}");
            let got = run(&q, &k, &v, &mask, scale, cap).unwrap();
            assert_close(&got, &want, dt, [0.0, 0.03, 0.008], &what);
            // Views 3 elements into their storage: not 16-byte aligned, so no vector loads.
            let (q, k, v) = (offset_view(&q, 3), offset_view(&k, 3), offset_view(&v, 3));
            let got = run(&q, &k, &v, &mask, scale, cap).unwrap();
            assert_close(
                &got,
                &want,
                dt,
                [0.0, 0.03, 0.008],
                &format!("{what}, misaligned"),
            );
        }
    }
}
