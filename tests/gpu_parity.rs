//! Device parity: the same model on the CPU (f32, the reference) and on CUDA, plus the strata
//! side of the forward-throughput benchmark. Only with `--features cuda`; run on the GPU machine
//! by `scripts/gpu-check.sh`, which sets `STRATA_REQUIRE_GPU=1` so that a missing device fails
//! instead of printing `NOT RUN` (see `strata_kernels::testing`).
//!
//! Tolerances, on the logits of every position:
//! - f32 on CUDA vs f32 on the CPU: max |Δ| ≤ 1e-4 · max(1, max |logit|) (cuBLAS and the CPU gemm
//!   sum in different orders; the real models' logits reach 20–40);
//! - bf16 on CUDA vs f32 on the CPU: max |Δ| ≤ 0.1 · max(1, max |logit|), and the top-1 token
//!   identical at every decisive position (where the f32 reference's top-1 leads the runner-up
//!   by ≥ 0.05 · max(1, max |logit|); the random fixtures have near-ties that bf16 may flip). bf16
//!   keeps 8 bits of mantissa; weights, activations and the residual stream are all rounded, so
//!   the error grows with depth;
//! - bf16 on CUDA vs bf16 on the CPU: the same bound (both round, in different orders).
//!
//! Paths are resolved at run time from `STRATA_ROOT` (default: this crate's directory at build
//! time), because the test executable runs from a copy of the repository on the GPU machine.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, IndexOp, Tensor};
use std::path::PathBuf;
use std::time::Instant;
use strata_kernels::testing::gpu_device;
use strata_model::{LoadOptions, Model, NoHooks, TokenBatch};

fn root() -> PathBuf {
    std::env::var_os("STRATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn load(path: &str, dtype: DType, device: &Device) -> Model {
    Model::load(
        path,
        &LoadOptions {
            dtype,
            device: device.clone(),
            revision: None,
        },
    )
    .unwrap_or_else(|e| panic!("{path} on {device:?} {dtype:?}: {e}"))
}

/// Logits `[T, vocab]` as f32 on the CPU.
fn logits(model: &Model, ids: &[u32]) -> Tensor {
    model
        .decoder
        .forward(&TokenBatch::single(ids.to_vec()).unwrap(), &mut NoHooks)
        .unwrap()
        .i(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
}

struct Cmp {
    max_abs: f32,
    scale: f32,
    /// Share of all positions whose top-1 tokens agree (reported).
    top1_agree: f32,
    /// Decisive positions (reference margin ≥ 0.05 · scale) whose top-1 differs (must be 0).
    decisive_flips: usize,
    decisive: usize,
}

fn compare(got: &Tensor, want: &Tensor) -> Cmp {
    let g: Vec<Vec<f32>> = got.to_vec2().unwrap();
    let w: Vec<Vec<f32>> = want.to_vec2().unwrap();
    let (mut max_abs, mut scale, mut agree) = (0f32, 0f32, 0usize);
    for (gr, wr) in g.iter().zip(&w) {
        for (a, b) in gr.iter().zip(wr) {
            assert!(a.is_finite(), "non-finite logit {a} (reference {b})");
            max_abs = max_abs.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    let scale = scale.max(1.0);
    let arg = |r: &[f32]| (0..r.len()).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap();
    let (mut decisive, mut decisive_flips) = (0usize, 0usize);
    for (gr, wr) in g.iter().zip(&w) {
        let (ga, wa) = (arg(gr), arg(wr));
        agree += usize::from(ga == wa);
        let runner_up = wr
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != wa)
            .map(|(_, &v)| v)
            .fold(f32::NEG_INFINITY, f32::max);
        if wr[wa] - runner_up >= 0.05 * scale {
            decisive += 1;
            decisive_flips += usize::from(ga != wa);
        }
    }
    Cmp {
        max_abs,
        scale,
        top1_agree: agree as f32 / g.len() as f32,
        decisive_flips,
        decisive,
    }
}

fn prompt_ids(model: &Model, n: usize) -> Vec<u32> {
    let vocab = model.config.vocab_size as u32;
    let tokenizer_vocab = model
        .tokenizer
        .as_ref()
        .map(|t| t.vocab_size() as u32)
        .unwrap_or(vocab)
        .min(vocab);
    (0..n as u32).map(|i| (i * 7919 + 13) % tokenizer_vocab).collect()
}

/// Checks one model file or directory; returns a Markdown table row.
fn check_model(path: &str, dev: &Device, n_tokens: usize) -> String {
    let cpu = load(path, DType::F32, &Device::Cpu);
    let ids = prompt_ids(&cpu, n_tokens.min(cpu.config.max_position_embeddings.max(1)));
    let want = logits(&cpu, &ids);
    let got32 = logits(&load(path, DType::F32, dev), &ids);
    let c32 = compare(&got32, &want);
    let cpu16 = logits(&load(path, DType::BF16, &Device::Cpu), &ids);
    let got16 = logits(&load(path, DType::BF16, dev), &ids);
    let c16 = compare(&got16, &want);
    let c16c = compare(&got16, &cpu16);
    let row = format!(
        "| {path} | {} | {:.2e} | {:.2e} | {:.1e} | {:.3} | {:.0}% ({}/{} decisive) | {:.3} |",
        ids.len(),
        c32.scale,
        c32.max_abs,
        c32.max_abs / c32.scale,
        c16.max_abs,
        100.0 * c16.top1_agree,
        c16.decisive - c16.decisive_flips,
        c16.decisive,
        c16c.max_abs,
    );
    println!("{row}");
    assert!(
        c32.max_abs <= 1e-4 * c32.scale,
        "{path}: f32 cuda vs cpu logits differ by {} (scale {})",
        c32.max_abs,
        c32.scale
    );
    assert!(
        c16.max_abs <= 0.1 * c16.scale && c16.decisive_flips == 0,
        "{path}: bf16 cuda vs f32 cpu: max diff {} (scale {}), top-1 differs at {} of {} decisive positions",
        c16.max_abs,
        c16.scale,
        c16.decisive_flips,
        c16.decisive
    );
    assert!(
        c32.top1_agree == 1.0 || c32.decisive_flips == 0,
        "{path}: f32 top-1 differs at a decisive position"
    );
    assert!(
        c16c.max_abs <= 0.1 * c16c.scale,
        "{path}: bf16 cuda vs bf16 cpu: max diff {} (scale {})",
        c16c.max_abs,
        c16c.scale
    );
    row
}

const HEADER: &str = "| model | tokens | max abs logit | f32 max abs diff | f32 rel | bf16 vs f32 max abs diff | bf16 top-1 agree | bf16 cuda vs bf16 cpu |\n|---|---|---|---|---|---|---|---|";

/// Appends a section to `$STRATA_PARITY_OUT` (gpu-check.sh collects it into its results file).
fn record(section: &str) {
    if let Some(p) = std::env::var_os("STRATA_PARITY_OUT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        writeln!(f, "{section}").unwrap();
    }
}

#[test]
#[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
fn gpu_fixture_models_logits_match_cpu() {
    let Some(dev) = gpu_device("gpu_fixture_models_logits_match_cpu") else {
        return;
    };
    let dir = root().join("tests/fixtures/models");
    let mut families: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    families.sort();
    assert!(families.len() >= 5, "fixtures missing under {}", dir.display());
    println!("{HEADER}");
    let rows: Vec<String> = families
        .iter()
        .map(|f| check_model(f.to_str().unwrap(), &dev, 24))
        .collect();
    record(&format!(
        "### Fixture models (random weights)\n\n{HEADER}\n{}\n",
        rows.join("\n")
    ));
}

#[test]
#[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
fn gpu_real_models_logits_match_cpu() {
    let Some(dev) = gpu_device("gpu_real_models_logits_match_cpu") else {
        return;
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    println!("{HEADER}");
    for file in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
        let p = root().join("models").join(file);
        if !p.is_file() {
            missing.push(file);
            continue;
        }
        rows.push(check_model(p.to_str().unwrap(), &dev, 48));
    }
    let mut section = format!(
        "### Real models (GGUF, dequantized)\n\n{HEADER}\n{}\n",
        rows.join("\n")
    );
    if !missing.is_empty() {
        // models/ is 340 MB: it cannot travel with the working tree to the GPU machine.
        let msg = format!(
            "NOT RUN for {} (not under {}/models; run scripts/fetch-models.sh where there is network)",
            missing.join(", "),
            root().display()
        );
        eprintln!("gpu_real_models_logits_match_cpu: {msg}");
        section.push_str(&format!("\n{msg}\n"));
        if std::env::var("STRATA_REQUIRE_REAL_MODELS").is_ok_and(|v| v == "1") {
            record(&section);
            panic!("STRATA_REQUIRE_REAL_MODELS=1: {msg}");
        }
    }
    record(&section);
}

/// The strata side of the forward-throughput benchmark: `STRATA_BENCH_MODEL=<dir>` (a
/// safetensors directory), `STRATA_BENCH_SHAPES="1x512,8x512"` (batch x tokens),
/// `STRATA_BENCH_OUT=<file.json>`. Without STRATA_BENCH_MODEL it only says it was not asked.
#[test]
#[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
fn gpu_bench_forward() {
    let Some(model_dir) = std::env::var_os("STRATA_BENCH_MODEL") else {
        eprintln!("gpu_bench_forward: not requested (STRATA_BENCH_MODEL unset)");
        return;
    };
    let Some(dev) = gpu_device("gpu_bench_forward") else {
        return;
    };
    let model_dir = model_dir.to_str().unwrap().to_string();
    let t0 = Instant::now();
    let model = load(&model_dir, DType::BF16, &dev);
    dev.synchronize().unwrap();
    let load_s = t0.elapsed().as_secs_f64();
    let shapes = std::env::var("STRATA_BENCH_SHAPES").unwrap_or_else(|_| "1x512,8x512".into());
    let vocab = model.config.vocab_size as u32;
    let (mut results, mut ops) = (Vec::new(), Vec::new());
    for shape in shapes.split(',') {
        let (b, t) = shape.split_once('x').expect("shape BxT");
        let (b, t): (usize, usize) = (b.parse().unwrap(), t.parse().unwrap());
        let prompts: Vec<Vec<u32>> = (0..b)
            .map(|r| {
                (0..t as u32)
                    .map(|i| (i * 7919 + r as u32 * 104_729 + 13) % vocab)
                    .collect()
            })
            .collect();
        let batch = TokenBatch::padded(&prompts, strata_model::Padding::Right, 0).unwrap();
        // Freed memory returned to the driver at every synchronisation (CUDA's default) or kept
        // in the pool (what Model::load sets); attention in strata's fused kernel (the default)
        // or as q·kᵀ, masked softmax and ·v.
        for (keep, fused_attention) in [(true, false), (false, true), (true, true)] {
            strata_model::keep_freed_device_memory(&dev, keep).unwrap();
            let decoder = model.decoder.with_fused_attention(fused_attention);
            let run = || {
                decoder.forward(&batch, &mut NoHooks).unwrap();
                dev.synchronize().unwrap();
            };
            for _ in 0..2 {
                run();
            }
            let (mut n, start) = (0usize, Instant::now());
            while n < 3 || (start.elapsed().as_secs_f64() < 2.0 && n < 20) {
                run();
                n += 1;
            }
            let per = start.elapsed().as_secs_f64() / n as f64;
            let tps = (b * t) as f64 / per;
            println!(
                "strata forward {model_dir} bf16 {b}x{t} keep_freed_memory={keep} fused_attention={fused_attention}: {:.2} ms/forward, {tps:.0} tokens/s ({n} runs)",
                per * 1e3
            );
            results.push(serde_json::json!({"batch": b, "tokens": t, "keep_freed_memory": keep, "fused_attention": fused_attention, "seconds_per_forward": per, "tokens_per_s": tps, "runs": n}));
            if std::env::var_os("STRATA_BENCH_OUT").is_some() {
                write_bench(&model_dir, load_s, &results, &ops);
            }
        }
        profile_forward(&model, &batch, &dev, false);
        profile_forward(&model, &batch, &dev, true);
        for OpTime { op, versus, ms } in op_bench(&model.config, b, t, &dev) {
            println!("strata op {b}x{t} {op}: {ms:.3} ms");
            ops.push(serde_json::json!({"batch": b, "tokens": t, "op": op, "versus": versus, "ms": ms}));
        }
    }
    write_bench(&model_dir, load_s, &results, &ops);
}

/// Writes the forward benchmark's results so far to `$STRATA_BENCH_OUT` (or stdout): after every
/// measurement, so that a later failure (a kernel fault ends the process) keeps what was measured.
fn write_bench(model_dir: &str, load_s: f64, forward: &[serde_json::Value], ops: &[serde_json::Value]) {
    let json = serde_json::json!({"engine": "strata", "model": model_dir, "dtype": "bf16", "load_s": load_s, "forward": forward, "ops": ops});
    match std::env::var_os("STRATA_BENCH_OUT") {
        Some(p) => std::fs::write(p, serde_json::to_string_pretty(&json).unwrap()).unwrap(),
        None => println!("{json}"),
    }
}

/// Median milliseconds of `run` (synchronised) over 10 runs after 3 warm-ups.
fn time_ms(dev: &Device, mut run: impl FnMut() -> Tensor) -> f64 {
    for _ in 0..3 {
        run();
    }
    dev.synchronize().unwrap();
    let mut ms: Vec<f64> = (0..10)
        .map(|_| {
            let start = Instant::now();
            run();
            dev.synchronize().unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[5]
}

/// One building block's median time, and the PyTorch op (`bench_torch.py`'s name) it is set against.
struct OpTime {
    op: String,
    versus: &'static str,
    ms: f64,
}

/// The forward's building blocks alone, bf16 at `b x t` tokens, random inputs: each projection
/// as the decoder multiplies it (`x · Wᵀ`, q|k|v and gate|up fused) and the attention core, both
/// ways the decoder can run it (q·kᵀ per kv group, the masked-softmax kernel and ·v; the fused
/// attention kernel where it supports the head dim). `scripts/gpu/bench_torch.py` times the same
/// GEMM shapes with `F.linear` and the attention with SDPA, so the two sides can be compared op
/// by op (scripts/gpu/summarize.py).
fn op_bench(c: &strata_model::ModelConfig, b: usize, t: usize, dev: &Device) -> Vec<OpTime> {
    let rand = |dims: &[usize]| {
        Tensor::randn(0f32, 0.02, dims, dev)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap()
    };
    let (d, h, g, e, m) = (c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp);
    let rows = b * t;
    let mut out = Vec::new();
    for (name, n_in, n_out) in [
        ("gemm qkv", d, (h + 2 * g) * e),
        ("gemm o", h * e, d),
        ("gemm gate_up", d, 2 * m),
        ("gemm down", m, d),
        ("gemm lm_head", d, c.vocab_size),
    ] {
        let (x, w) = (rand(&[rows, n_in]), rand(&[n_out, n_in]));
        let ms = time_ms(dev, || x.matmul(&w.t().unwrap()).unwrap());
        out.push(OpTime {
            op: name.to_string(),
            versus: name,
            ms,
        });
    }
    let (q, k, v) = (rand(&[b, h, t, e]), rand(&[b, g, t, e]), rand(&[b, g, t, e]));
    let causal: Vec<f32> = (0..t * t)
        .map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    let mask = Tensor::from_vec(causal, (1, 1, t, t), dev).unwrap();
    let scale = 1.0 / (e as f32).sqrt();
    let r = h / g;
    let composite = time_ms(dev, || {
        let scores = q
            .reshape((b, g, r * t, e))
            .unwrap()
            .matmul(&k.t().unwrap())
            .unwrap()
            .reshape((b, h, t, t))
            .unwrap();
        let p = strata_kernels::masked_softmax(&scores, &mask, scale, None).unwrap();
        p.reshape((b, g, r * t, t)).unwrap().matmul(&v).unwrap()
    });
    let versus = "attention core (SDPA)";
    out.push(OpTime {
        op: "attention core: q kT, masked softmax, p v".into(),
        versus,
        ms: composite,
    });
    if strata_kernels::fused_attention_supported(DType::BF16, e, dev) {
        let ms = time_ms(dev, || {
            strata_kernels::fused_attention(&q, &k, &v, &mask, scale, None).unwrap()
        });
        out.push(OpTime {
            op: "attention core: fused kernel".into(),
            versus,
            ms,
        });
    }
    out
}

/// Where a forward's time goes: a hook that synchronises the device at every hook point and
/// charges the time since the previous point to this one (summed over layers). Synchronising
/// removes the CPU/GPU overlap, so the total exceeds a plain forward's; the split is what counts.
/// It never asks for `attn.hook_result` (each head's share of the output projection) nor the
/// split inputs: extra work that only a hook asking for it pays. With `fused_only` it also skips
/// the points whose hooks would turn the fused kernels off (q, k, v, attention scores and
/// pattern, MLP pre-activation), so the profile is that of a plain forward.
struct SyncProfile {
    dev: Device,
    last: Instant,
    spent: std::collections::BTreeMap<String, f64>,
    fused_only: bool,
}

impl strata_model::Hook for SyncProfile {
    fn wants(&self, point: strata_model::HookPoint) -> bool {
        let extra_work = matches!(point, strata_model::HookPoint::HeadResult(_)) || point.is_on_request();
        !(extra_work || self.fused_only && point.inside_fused_kernels())
    }
    fn visit(&mut self, point: strata_model::HookPoint, act: Tensor) -> strata_model::Result<Tensor> {
        self.dev.synchronize()?;
        let name = point.to_string();
        // blocks.{l}.attn.hook_z -> attn.hook_z
        let kind = match name.strip_prefix("blocks.") {
            Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k).to_string(),
            None => name,
        };
        *self.spent.entry(kind).or_default() += self.last.elapsed().as_secs_f64();
        self.last = Instant::now();
        Ok(act)
    }
}

fn profile_forward(model: &Model, batch: &TokenBatch, dev: &Device, fused_only: bool) {
    let mut prof = SyncProfile {
        dev: dev.clone(),
        last: Instant::now(),
        spent: Default::default(),
        fused_only,
    };
    for _ in 0..2 {
        prof.spent.clear();
        dev.synchronize().unwrap();
        prof.last = Instant::now();
        model.decoder.forward(batch, &mut prof).unwrap();
    }
    let total: f64 = prof.spent.values().sum();
    let mut rows: Vec<_> = prof.spent.iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(a.1));
    println!(
        "profile {}x{}{} (time charged to the hook point that ends it; total {:.2} ms):",
        batch.len(),
        batch.seq_len(),
        if fused_only {
            ", fused kernels on"
        } else {
            ", every hook point"
        },
        total * 1e3
    );
    for (k, v) in rows {
        println!("  {k:<24} {:8.3} ms  {:5.1}%", v * 1e3, 100.0 * v / total);
    }
}

/// The lens kernel on a real forward: statistics of each position's own output distribution
/// (KL(final ‖ final) = 0, rank of the argmax = 0), GPU against the CPU twin.
#[test]
#[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
fn gpu_lens_stats_on_model_logits() {
    let Some(dev) = gpu_device("gpu_lens_stats_on_model_logits") else {
        return;
    };
    let path = root().join("tests/fixtures/models/llama");
    let model = load(path.to_str().unwrap(), DType::F32, &dev);
    let ids = prompt_ids(&model, 16);
    let z = model
        .decoder
        .forward(&TokenBatch::single(ids.clone()).unwrap(), &mut NoHooks)
        .unwrap()
        .i(0)
        .unwrap()
        .contiguous()
        .unwrap();
    let logp = candle_nn_free_log_softmax(&z);
    let top: Vec<u32> = z
        .argmax(1)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap()
        .to_vec1()
        .unwrap();
    let rows: Vec<u32> = (0..ids.len() as u32).collect();
    let got = strata_kernels::lens_stats(&z, &logp, &top, &rows).unwrap();
    let zc: Vec<f32> = z
        .to_device(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let lc: Vec<f32> = logp
        .to_device(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want = strata_kernels::lens_stats_cpu(&zc, model.config.vocab_size, &lc, &top, &rows);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.rank, 0);
        assert_eq!(g.rank, w.rank);
        assert!(g.kl.abs() < 1e-4, "KL(p || p) = {}", g.kl);
        assert!(
            (g.entropy - w.entropy).abs() < 1e-4 * (1.0 + w.entropy.abs()),
            "{g:?} vs {w:?}"
        );
        assert!((g.prob - w.prob).abs() < 1e-5, "{g:?} vs {w:?}");
    }
}

/// log_softmax over the last dim with candle-core ops only.
fn candle_nn_free_log_softmax(z: &Tensor) -> Tensor {
    let m = z.max_keepdim(1).unwrap();
    let shifted = z.broadcast_sub(&m).unwrap();
    let lse = shifted.exp().unwrap().sum_keepdim(1).unwrap().log().unwrap();
    shifted.broadcast_sub(&lse).unwrap()
}

/// The experiments on CUDA (f32) against the CPU: the logit lens over all positions (its
/// statistics from the lens kernel and argmax top-k on the GPU), exact patching of every component with the batch sized
/// automatically from free device memory, and attribution patching (backward on the GPU).
/// Tolerances: 1e-4 relative (f32, cuBLAS vs the CPU gemm, as for the logits above); ranks and
/// top tokens identical.
#[test]
#[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
fn gpu_experiments_match_cpu() {
    use strata_experiments::results::max_relative_difference;
    use strata_experiments::{
        activation_patching, attribution_patching, logit_lens, BatchSize, Item, LensOptions, PatchComponent,
        PatchOptions,
    };
    let Some(dev) = gpu_device("gpu_experiments_match_cpu") else {
        return;
    };
    let mut lines = vec![
        "| fixture | lens rows | lens max diff | patch rows (auto batch) | patch max rel diff | attribution max rel diff |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    for family in ["llama", "gemma2", "gpt2"] {
        let path = root().join("tests/fixtures/models").join(family);
        let path = path.to_str().unwrap();
        let (cpu, gpu) = (load(path, DType::F32, &Device::Cpu), load(path, DType::F32, &dev));
        let items = [Item::new("cat", "The cat sat on the", " of")
            .with_distractor(" and")
            .with_corrupted("The dog sat on the")];

        let lens_opts = LensOptions::default();
        let (lc, lg) = (
            logit_lens(&cpu, &items, &lens_opts).unwrap(),
            logit_lens(&gpu, &items, &lens_opts).unwrap(),
        );
        let mut lens_diff = 0f64;
        for (c, g) in lc[0].rows.iter().zip(&lg[0].rows) {
            assert_eq!(
                (c.layer, c.position, c.target_rank),
                (g.layer, g.position, g.target_rank)
            );
            let ids = |r: &strata_experiments::LensRow| r.top.iter().map(|t| t.id).collect::<Vec<_>>();
            assert_eq!(
                ids(c),
                ids(g),
                "{family} layer {} position {}",
                c.layer,
                c.position
            );
            for (a, b) in [
                (c.target_prob, g.target_prob),
                (c.kl_to_final, g.kl_to_final),
                (c.entropy, g.entropy),
            ] {
                lens_diff = lens_diff.max((a - b).abs());
            }
        }
        assert!(lens_diff <= 1e-4, "{family}: lens differs by {lens_diff}");

        let patch_opts = PatchOptions {
            components: PatchComponent::ALL.to_vec(),
            max_batch: BatchSize::Auto,
            ..Default::default()
        };
        let positions = strata_experiments::prepare_all(&gpu, &items).unwrap()[0].len();
        let auto = BatchSize::Auto.resolve(&gpu.decoder, positions).unwrap();
        let (pc, pg) = (
            activation_patching(&cpu, &items, &patch_opts, &mut |_| {}).unwrap(),
            activation_patching(&gpu, &items, &patch_opts, &mut |_| {}).unwrap(),
        );
        let patch_diff = max_relative_difference(&pg.rows, &pc.rows).unwrap();
        assert!(patch_diff <= 1e-4, "{family}: patching differs by {patch_diff}");

        let (ac, ag) = (
            attribution_patching(&cpu, &items, &patch_opts).unwrap(),
            attribution_patching(&gpu, &items, &patch_opts).unwrap(),
        );
        let attr_diff = max_relative_difference(&ag.rows, &ac.rows).unwrap();
        assert!(
            attr_diff <= 1e-4,
            "{family}: attribution patching differs by {attr_diff}"
        );

        let line = format!(
            "| {family} | {} | {lens_diff:.2e} | {} (auto: {auto} runs per forward) | {patch_diff:.2e} | {attr_diff:.2e} |",
            lc[0].rows.len(),
            pc.rows.len(),
        );
        println!("{line}");
        lines.push(line);
    }
    record(&format!(
        "### Experiments on CUDA vs CPU (f32)\n\n{}\n",
        lines.join("\n")
    ));
}
