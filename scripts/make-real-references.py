#!/usr/bin/env python3
"""Reference outputs of Hugging Face transformers for the two real GGUF models in models/.

Run through `bash scripts/make-real-references.sh` (it sets up the venv and fetches the models).
transformers loads each GGUF file itself (`from_pretrained(models_dir, gguf_file=...)`; for the
`llama` and `gemma3` architectures that is its legacy GGUF path, which dequantizes every tensor
with gguf-py to f32 and undoes llama.cpp's conventions), in f32, eager attention, on the CPU.
For every model this writes, under tests/fixtures/real/<model>/:

  hf_config.json            transformers' config built from the GGUF metadata (`config.to_dict()`)
  tokenizer_ids.jsonl       one line per corpus string: {"i", "text", "ids", "ids_plain"}; `ids` is
                            `tokenizer(text)["input_ids"]` (special tokens added as the file says,
                            e.g. Gemma's <bos>), `ids_plain` the same with add_special_tokens=False
  tensors.json              every parameter of the loaded model (HF names): shape, sum, sum of
                            squares, sum of |x| (float64) and the values at 32 fixed flat indices,
                            plus the GGUF quantization type of every GGUF tensor
  reference.safetensors     per prompt i (see reference.json for the prompts):
                              p{i}.input_ids            [1, T] i64
                              p{i}.logits_last          [V] f32  full logits at the last position
                              p{i}.top5_ids             [T, 5] i64  per position, best first
                              p{i}.top5_logits          [T, 5] f32
                              p{i}.fixed_logits         [T, K] f32  logits of `fixed_ids` at every position
                              p{i}.logits_max_abs       [T] f32  max |logit| over the vocabulary
                              p{i}.logits_logsumexp     [T] f32
                              p{i}.hook_embed           [T, d] f32  embedding output (Gemma: scaled)
                              p{i}.blocks.{l}.hook_resid_post  [T, d] f32  output of decoder layer l
                                                        (raw, before the final norm)
                              p{i}.ln_final.hook_normalized    [T, d] f32  final norm output
                            fixed_ids                   [K] i64
                            gen.input_ids               [1, T0] i64  prompt of the greedy run (= p0)
                            gen.output_ids              [20] i64  20 greedy tokens: argmax of the
                                                        last-position logits, full recompute each step,
                                                        no early stop at EOS
  reference.json            prompts, shapes, versions, the GGUF sha256, load time and peak memory

and tests/fixtures/real/tokenizer_corpus.jsonl, the corpus ({"i", "text"} per line).

With --quant-types (also done on every full run): tests/fixtures/gguf/quant-types.gguf-py.safetensors,
gguf-py's dequantization (what transformers uses) of every tensor of tests/fixtures/gguf/quant-types.gguf
(one [4, 256] tensor per type: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K, written
by candle from fixed data by the ignored Rust test `write_quant_types_fixture`).
Deterministic: CPU, f32, no sampling. Each model runs in its own subprocess so that its peak memory
(ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODELS = {
    "smollm2-135m-instruct-q4_1": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma-3-270m-q4_k_m": "gemma-3-270m-q4_k_m.gguf",
}

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    return",
    "Once upon a time, in a small village,",
]
N_GREEDY = 20
N_SAMPLES = 32


def corpus() -> list[str]:
    """At least 200 varied strings: English, code, digits, unicode, whitespace, special tokens."""
    texts = [
        "",
        " ",
        "  ",
        "   ",
        "\t",
        "\n",
        "\n\n",
        "\n\n\n",
        "\r\n",
        " \n ",
        "\t\tindented with tabs",
        "Hello world",
        "Hello world ",
        " Hello world",
        "  Hello world  ",
        "Hello  world",
        "Hello   world",
        "hello, world!",
        "HELLO WORLD",
        "Hello\nworld",
        "Hello\n\nworld\n",
        "The quick brown fox jumps over the lazy dog.",
        "The capital of France is",
        "Once upon a time, in a small village, there lived an old baker.",
        "I can't believe it's not butter! You're right, they'd've known.",
        "She said, \"It's 5 o'clock somewhere.\"",
        "Mechanistic interpretability studies the circuits inside neural networks.",
        "Dr. Smith arrived at 3:45 p.m. on Jan. 5th, 2024.",
        "e.g., i.e., etc., vs. -- and so on...",
        "What's the weather like today? It's sunny!!!",
        "Supercalifragilisticexpialidocious",
        "antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "A",
        "a",
        "I",
        ".",
        "!",
        "?",
        "...",
        "—",
        "–",
        "It's",
        "don't",
        "WE'LL",
        "Y'all",
        "rock'n'roll",
        "email: someone@example.com",
        "https://example.com/path?query=1&x=y#frag",
        "C:\\Users\\name\\Documents\\file.txt",
        "/usr/local/bin/python3 --version",
        "#hashtag @mention $dollar %percent ^caret &amp; *star",
        "(parentheses) [brackets] {braces} <angles>",
        "a+b=c; x*y/z; 2^10; 5%3; ~!@#$%^&*()_+",
        "\"double\" 'single' `backtick`",
        "The year 1999 and 2000 and 2024.",
        "0",
        "1",
        "12",
        "123",
        "1234",
        "12345",
        "123456",
        "1234567",
        "12345678901234567890",
        "3.14159265358979",
        "-42",
        "+1 (555) 123-4567",
        "1,000,000",
        "1.000.000,50",
        "0x1F 0b1010 0o17",
        "1e-10 6.022e23",
        "2024-01-15T10:30:00Z",
        "99 bottles of beer on the wall",
        "Version 1.2.3-beta+build.5",
        "x1 y2 z3 a10 b200",
        "$19.99 €5,00 £3 ¥100",
        "50% off!!! 100%",
        "def add(a, b):\n    return a + b\n",
        "def fibonacci(n):\n    return",
        "for i in range(10):\n\tprint(i)",
        "class Foo:\n    def __init__(self):\n        self.x = 1\n",
        "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
        "fn main() {\n    println!(\"Hello, world!\");\n}",
        "let v: Vec<u32> = (0..10).map(|x| x * 2).collect();",
        "impl<T: Clone> Trait for Wrapper<T> where T: Send {}",
        "#include <stdio.h>\nint main(void) { return 0; }",
        "std::vector<std::string> names{\"a\", \"b\"};",
        "public static void main(String[] args) {}",
        "console.log(`template ${value}`);",
        "const f = async (x) => { await g(x); };",
        "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
        "<html><body><h1>Title</h1><p class=\"x\">Text</p></body></html>",
        "{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "key: value\nlist:\n  - a\n  - b\n",
        "[section]\nname = \"strata\"\nversion = \"0.1.0\"",
        "if (x != y && z >= 0 || !w) { return -1; }",
        "a == b != c <= d >= e -> f => g :: h",
        "// comment\n/* block */\n# hash comment",
        "    four spaces",
        "        eight spaces",
        "trailing spaces    ",
        "tab\tseparated\tvalues",
        "mixed \t whitespace \n here",
        "line1\r\nline2\r\n",
        "$ cargo test -p strata-model --test gguf_real",
        "git commit -m \"fix: handle empty input\"",
        "x_1 + x_2 = y_{ij}",
        "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
        "Ünïcödé tëxt wïth äccënts",
        "café naïve résumé façade",
        "Straße groß Fuß",
        "Ærøskøbing Åland",
        "Привет, мир!",
        "Здравствуйте",
        "Γειά σου Κόσμε",
        "שלום עולם",
        "مرحبا بالعالم",
        "नमस्ते दुनिया",
        "你好，世界",
        "我爱自然语言处理。",
        "こんにちは世界",
        "日本語のテキストです。カタカナもあります。",
        "안녕하세요 세계",
        "สวัสดีชาวโลก",
        "Xin chào thế giới",
        "Merhaba dünya",
        "Cześć świecie",
        "Tiếng Việt có dấu",
        "😀",
        "😀😃😄",
        "👍🏽",
        "👨‍👩‍👧‍👦",
        "🇫🇷🇩🇪",
        "I ❤️ Rust 🦀",
        "✓ ✗ ★ ☆ ♠ ♣ ♥ ♦",
        "∀x ∈ ℝ: x² ≥ 0",
        "∑_{i=1}^{n} i = n(n+1)/2",
        "α β γ δ ε ζ η θ",
        "½ ¼ ¾ ⅓",
        "→ ← ↑ ↓ ⇒ ⇔",
        "™ © ® ° ± × ÷",
        "e\u0301",
        "\u00e9",
        "zero\u200bwidth",
        "non\u00a0breaking",
        "\ufeffBOM at start",
        "a\u0000b",
        "control\u0007bell",
        "Ω ohm vs Ω omega",
        "ﬁ ligature",
        "ＦＵＬＬＷＩＤＴＨ",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
        "𐍈 gothic",
        "<|endoftext|>",
        "<|im_start|>user\nHi<|im_end|>",
        "<|im_start|>assistant\n",
        "<bos>",
        "<eos>",
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
        "<pad><unk><mask>",
        "<s></s>",
        "[INST] question [/INST]",
        "<think>reasoning</think>",
        "text with <|endoftext|> inside",
        "<not_a_special_token>",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababababab",
        "..........",
        "----------",
        "==========",
        "__________",
        "**bold** _italic_ `code` ~~strike~~",
        "# Heading\n\n- item 1\n- item 2\n\n1. first\n2. second",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "> quoted text\n>> nested",
        "Q: What is 2+2?\nA: 4",
        "User: hi\nAssistant: hello",
        "The mitochondria is the powerhouse of the cell.",
        "To be, or not to be, that is the question.",
        "All happy families are alike; each unhappy family is unhappy in its own way.",
        "Call me Ishmael.",
        "It was the best of times, it was the worst of times.",
        "In 1492, Columbus sailed the ocean blue.",
        "Photosynthesis converts light energy into chemical energy.",
        "The Eiffel Tower is 330 metres tall.",
        "Transformers use self-attention over token sequences.",
        "GGUF files store quantized tensors with metadata.",
        "Q4_K_M Q8_0 F16 BF16 Q6_K",
        "model.layers.3.self_attn.q_proj.weight",
        "blk.0.attn_q.weight",
        "ALL CAPS SENTENCE FOR TESTING.",
        "MiXeD CaSe WoRdS",
        "lowercase only words here",
        "word",
        " word",
        "word ",
        " word ",
        "Word",
        " Word",
        "WORD",
        "newline at end\n",
        "\nnewline at start",
        "\n\nleading blank lines",
        "many\n\n\n\n\nnewlines",
        "spaces   between   words",
        "end with tab\t",
        "\tstart with tab",
        " \t \t mixed leading",
        "Don't stop believing",
        "I'm, you're, he's, she's, it's, we're, they're",
        "Isn't, aren't, wasn't, weren't, won't, wouldn't",
        "O'Reilly's book",
        "The U.S.A. and the U.K.",
        "Mr. & Mrs. Smith",
        "3rd 21st 42nd 100th",
        "1/2 3/4 10/20/2020",
        "10:30 AM, 22:15",
        "a.b.c.d",
        "foo.bar()",
        "foo->bar",
        "x[0][1]",
        "#!/bin/bash\nset -euo pipefail\necho \"$HOME\"",
        "printf(\"%d\\n\", x);",
        "\\n \\t \\\\ literal backslashes",
        "emoji in code: let s = \"🦀\";",
        "München, Zürich, København",
        "São Paulo, Bogotá, Montréal",
        "Ελληνικά και English mixed",
        "中文 and English 混合",
        "日本語 with 数字 123",
        "Русский текст с цифрами 2024",
    ]
    # a few generated ones: numbers and repeated words of growing length
    texts += [str(7**k) for k in range(1, 16, 3)]
    texts += [" ".join(["token"] * n) for n in (2, 5, 17)]
    texts += ["x" * n for n in (3, 16, 33)]
    assert len(texts) >= 200, len(texts)
    assert len(set(texts)) == len(texts), "duplicate corpus entries"
    return texts


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_stats(t, n_samples: int) -> dict:
    import torch

    flat = t.detach().reshape(-1).to(torch.float64)
    n = flat.numel()
    g = torch.Generator().manual_seed(1234)
    idx = sorted(set([0, n - 1, n // 2] + torch.randint(0, n, (n_samples,), generator=g).tolist()))
    return {
        "shape": list(t.shape),
        "sum": float(flat.sum()),
        "sq_sum": float((flat * flat).sum()),
        "abs_sum": float(flat.abs().sum()),
        "idx": idx,
        "val": [float(flat[i]) for i in idx],
    }


def run_model(key: str, models_dir: Path, out_root: Path) -> None:
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    gguf_name = MODELS[key]
    gguf_path = models_dir / gguf_name
    out = out_root / key
    out.mkdir(parents=True, exist_ok=True)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        str(models_dir), gguf_file=gguf_name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    load_s = time.perf_counter() - t0
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(models_dir), gguf_file=gguf_name)
    tok_load_s = time.perf_counter() - t0
    print(f"[{key}] model load {load_s:.2f}s, tokenizer load {tok_load_s:.2f}s, "
          f"peak RSS after model load {rss_model / 1024:.0f} MiB (before: {rss0 / 1024:.0f} MiB)", flush=True)

    config = model.config.to_dict()
    config.pop("_name_or_path", None)  # the local models/ path: not part of the model
    (out / "hf_config.json").write_text(json.dumps(config, indent=1, sort_keys=True, default=str) + "\n")

    # --- tokenizer ------------------------------------------------------------------------
    texts = corpus()
    with open(out / "tokenizer_ids.jsonl", "w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            ids = tok(text)["input_ids"]
            plain = tok(text, add_special_tokens=False)["input_ids"]
            f.write(json.dumps({"i": i, "text": text, "ids": ids, "ids_plain": plain}, ensure_ascii=False) + "\n")

    # --- tensors ----------------------------------------------------------------------------
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    quant = {t.name: t.tensor_type.name for t in reader.tensors}
    state = model.state_dict()
    tensors = {name: tensor_stats(t, N_SAMPLES) for name, t in sorted(state.items())}
    (out / "tensors.json").write_text(
        json.dumps({"gguf_quant_types": quant, "tensors": tensors}, indent=None, sort_keys=True) + "\n"
    )

    # --- forward passes -----------------------------------------------------------------------
    layers = model.model.layers
    captured: dict[int, torch.Tensor] = {}

    def hook(idx):
        def fn(_module, _inputs, output):
            hs = output[0] if isinstance(output, (tuple, list)) else output
            captured[idx] = hs.detach().clone()

        return fn

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    vocab = model.config.vocab_size
    fixed_ids = sorted(set([0, 1, 2, 3, 10, 100, 1000, vocab // 2, vocab - 1]))
    blobs: dict[str, torch.Tensor] = {"fixed_ids": torch.tensor(fixed_ids, dtype=torch.int64)}
    prompt_meta = []
    t_fwd = time.perf_counter()
    with torch.no_grad():
        for p, prompt in enumerate(PROMPTS):
            ids = tok(prompt, return_tensors="pt")["input_ids"]
            captured.clear()
            res = model(input_ids=ids, output_hidden_states=True, use_cache=False)
            logits = res.logits[0].float()  # [T, V]
            T = logits.shape[0]
            top = torch.topk(logits, 5, dim=-1)
            blobs[f"p{p}.input_ids"] = ids.to(torch.int64).contiguous()
            blobs[f"p{p}.logits_last"] = logits[-1].contiguous()
            blobs[f"p{p}.top5_ids"] = top.indices.to(torch.int64).contiguous()
            blobs[f"p{p}.top5_logits"] = top.values.contiguous()
            blobs[f"p{p}.fixed_logits"] = logits[:, fixed_ids].contiguous()
            blobs[f"p{p}.logits_max_abs"] = logits.abs().amax(dim=-1).contiguous()
            blobs[f"p{p}.logits_logsumexp"] = torch.logsumexp(logits, dim=-1).contiguous()
            blobs[f"p{p}.hook_embed"] = res.hidden_states[0][0].contiguous()
            for l in range(len(layers)):
                blobs[f"p{p}.blocks.{l}.hook_resid_post"] = captured[l][0].contiguous()
                # hidden_states[l+1] is the layer output, except the last, which has the final norm applied
                if l + 1 < len(layers):
                    assert torch.equal(res.hidden_states[l + 1][0], captured[l][0]), (key, p, l)
            blobs[f"p{p}.ln_final.hook_normalized"] = res.hidden_states[-1][0].contiguous()
            prompt_meta.append({"prompt": prompt, "ids": ids[0].tolist(), "len": T,
                                "top1": top.indices[:, 0].tolist()})
            print(f"[{key}] prompt {p}: {T} tokens, top1 last = {tok.decode([int(top.indices[-1, 0])])!r}",
                  flush=True)

        # greedy, full recompute each step, no early stop
        ids = blobs["p0.input_ids"].clone()
        blobs["gen.input_ids"] = ids.clone()
        new = []
        for _ in range(N_GREEDY):
            nxt = int(model(input_ids=ids, use_cache=False).logits[0, -1].argmax())
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]], dtype=ids.dtype)], dim=1)
        blobs["gen.output_ids"] = torch.tensor(new, dtype=torch.int64)
    fwd_s = time.perf_counter() - t_fwd
    for h in handles:
        h.remove()
    print(f"[{key}] greedy: {tok.decode(new)!r}", flush=True)

    save_file(blobs, str(out / "reference.safetensors"), metadata={"model": key})
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    meta = {
        "model": key,
        "gguf_file": gguf_name,
        "gguf_sha256": sha256(gguf_path),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "attn_implementation": "eager",
        "model_class": type(model).__name__,
        "tokenizer_class": type(tok).__name__,
        "n_layers": len(layers),
        "d_model": model.config.hidden_size,
        "vocab_size": vocab,
        "prompts": prompt_meta,
        "fixed_ids": fixed_ids,
        "greedy": {"prompt": PROMPTS[0], "n_new": N_GREEDY, "output_ids": new, "text": tok.decode(new)},
        "corpus_size": len(texts),
        "load_seconds": round(load_s, 3),
        "tokenizer_load_seconds": round(tok_load_s, 3),
        "forward_and_greedy_seconds": round(fwd_s, 3),
        "peak_rss_mib_after_load": round(rss_model / 1024, 1),
        "peak_rss_mib_before_load": round(rss0 / 1024, 1),
        "peak_rss_mib_total": round(rss_peak / 1024, 1),
        "tensor_names": {n: list(t.shape) for n, t in sorted(blobs.items())},
    }
    (out / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"[{key}] wrote {out} ({size / 1e6:.2f} MB)", flush=True)


def quant_types_reference(fixtures: Path) -> None:
    import numpy as np
    import torch
    from gguf import GGUFReader, dequantize
    from safetensors.torch import save_file

    src = fixtures / "quant-types.gguf"
    if not src.is_file():
        sys.exit(f"missing {src}: run `cargo test -p strata-model --test gguf_real -- --ignored write_quant_types_fixture`")
    out = {}
    for t in GGUFReader(str(src)).tensors:
        values = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        shape = [int(d) for d in reversed(t.shape)]
        out[t.name] = torch.from_numpy(values.reshape(shape).copy())
        print(f"[quant-types] {t.name}: {t.tensor_type.name} {shape}", flush=True)
    save_file(out, str(fixtures / "quant-types.gguf-py.safetensors"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "real")
    ap.add_argument("--model", choices=sorted(MODELS), action="append",
                    help="only this model (repeatable); default: all, each in its own subprocess")
    ap.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quant-types", action="store_true",
                    help="only the gguf-py dequantization of tests/fixtures/gguf/quant-types.gguf")
    args = ap.parse_args()
    quant_dir = ROOT / "tests" / "fixtures" / "gguf"
    if args.quant_types:
        quant_types_reference(quant_dir)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "tokenizer_corpus.jsonl", "w", encoding="utf-8") as f:
        for i, text in enumerate(corpus()):
            f.write(json.dumps({"i": i, "text": text}, ensure_ascii=False) + "\n")

    keys = args.model or list(MODELS)
    for key in keys:
        path = args.models_dir / MODELS[key]
        if not path.is_file():
            sys.exit(f"missing {path}: run scripts/fetch-models.sh first")
    if args.in_process:
        for key in keys:
            run_model(key, args.models_dir, args.out)
        return
    if not args.model:
        quant_types_reference(quant_dir)
    for key in keys:
        cmd = [sys.executable, __file__, "--in-process", "--model", key,
               "--models-dir", str(args.models_dir), "--out", str(args.out)]
        subprocess.run(cmd, check=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))


if __name__ == "__main__":
    main()
