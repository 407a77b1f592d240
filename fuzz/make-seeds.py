#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ from the repository's fixtures (run from fuzz/).

Small on purpose: GGUF seeds are headers only (tokenizer arrays cut to a few entries, no tensor
data), safetensors seeds are a fixture's config.json plus its header with little or no data,
probe seeds are a few lines of the shipped suites.
"""
import json, os, struct, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "fuzz", "corpus")

# ---- GGUF: minimal reader/writer (v2/v3, little-endian) ----
SIZES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class R:
    def __init__(self, f):
        self.f = f

    def u(self, fmt):
        n = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.f.read(n))[0]

    def s(self):
        return self.f.read(self.u("Q"))

    def value(self, t):
        if t in SIZES:
            return (t, self.u(SIZES[t]))
        if t == 8:
            return (t, self.s())
        if t == 9:
            et = self.u("I")
            n = self.u("Q")
            return (t, (et, [self.value(et) for _ in range(n)]))
        raise ValueError(f"value type {t}")


def w_value(out, t, v):
    if t in SIZES:
        out += struct.pack("<" + SIZES[t], v)
    elif t == 8:
        out += struct.pack("<Q", len(v)) + v
    else:
        et, items = v
        out += struct.pack("<IQ", et, len(items))
        for _, x in items:
            w_value(out, et, x)


def gguf_header_seed(path, keep_array=8):
    with open(path, "rb") as f:
        r = R(f)
        magic, version = f.read(4), r.u("I")
        n_tensors, n_kv = r.u("Q"), r.u("Q")
        kvs = []
        for _ in range(n_kv):
            key = r.s()
            t = r.u("I")
            kvs.append((key, t, r.value(t)[1]))
        tensors = []
        for _ in range(n_tensors):
            name = r.s()
            nd = r.u("I")
            dims = [r.u("Q") for _ in range(nd)]
            tensors.append((name, dims, r.u("I"), r.u("Q")))
    out = bytearray(magic + struct.pack("<IQQ", version, len(tensors), len(kvs)))
    for key, t, v in kvs:
        if t == 9:
            v = (v[0], v[1][:keep_array])
        out += struct.pack("<Q", len(key)) + key + struct.pack("<I", t)
        w_value(out, t, v)
    for name, dims, dt, off in tensors:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", dt, off)
    return bytes(out)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # GGUF
    with open(os.path.join(ROOT, "tests/fixtures/gguf/quant-types.gguf"), "rb") as f:
        write("gguf_header", "quant-types.gguf", f.read()[:65536])
    for name in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]:
        p = os.path.join(ROOT, "models", name)
        if os.path.exists(p):
            h = gguf_header_seed(p)
            write("gguf_header", name.replace(".gguf", ".header.gguf"), h)
        else:
            print(f"skip {p} (not downloaded)", file=sys.stderr)

    # safetensors + config: u32 LE config length, config.json, model.safetensors (cut)
    for fam in ["llama", "gemma2", "gemma3", "qwen2", "phi3", "gpt2"]:
        d = os.path.join(ROOT, "tests/fixtures/models", fam)
        config = open(os.path.join(d, "config.json"), "rb").read()
        st = open(os.path.join(d, "model.safetensors"), "rb").read()
        (hlen,) = struct.unpack("<Q", st[:8])
        header_only = st[: 8 + hlen]
        write("safetensors_config", f"{fam}-header-only", struct.pack("<I", len(config)) + config + header_only)
    # a tiny complete file: one f32 tensor of 2 elements
    hdr = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    tiny = struct.pack("<Q", len(hdr)) + hdr + struct.pack("<ff", 1.0, -2.0)
    cfg = open(os.path.join(ROOT, "tests/fixtures/models/llama/config.json"), "rb").read()
    write("safetensors_config", "tiny-complete", struct.pack("<I", len(cfg)) + cfg + tiny)

    # probe files: a few lines of each shipped suite, and the generator line
    for suite in ["factual", "ioi", "greater_than", "induction"]:
        lines = open(os.path.join(ROOT, "probes", f"{suite}.jsonl"), encoding="utf-8").read().splitlines()
        write("probe_file", f"{suite}-head", ("\n".join(lines[:4]) + "\n").encode())
    write("probe_file", "small-induction", (json.dumps({"generate": "induction", "count": 2, "length": 3, "repeat": 1, "seed": 7, "words": ["apple", "table", "river", "window", "garden", "doctor", "music", "paper"]}) + "\n").encode())
    write("probe_file", "all-fields", (json.dumps({"id": "a", "prompt": "The teacher reads a", "target": " the", "distractor": " a", "corrupted": "The doctor reads a", "subject": "teacher", "good": [" the"], "bad": [" a"]}) + "\n").encode())


main()
