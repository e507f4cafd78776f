#!/usr/bin/python3
"""Writes test/fixtures/torch-train/: two LoRA training steps computed by PyTorch autograd and
torch.optim.AdamW, for each tiny model in ../shared/fixtures (RWKV-4, GPT-NeoX parallel and
sequential), which test/engine-parity/torch-train.test.ts holds every engine to.

Run with Debian's PyTorch (transformers is not installed there, so the forward passes below are
written from the transformers definitions, modeling_rwkv.py and modeling_gpt_neox.py):

    /usr/bin/python3 scripts/make-torch-train-fixtures.py

What is computed, per model:
- the base: every tensor of model.safetensors rounded to bfloat16 (a 16-bit checkpoint) and upcast,
  as ditty upcasts a bf16 checkpoint; the sha256 of those bf16 bytes is recorded so the test can
  check it gives ditty the same base;
- LoRA on ditty's default targets (lora/config.ts DEFAULT_TARGET_MODULES), r 4, alpha 8, dropout 0,
  initial A and B drawn here (B nonzero so A gets a gradient) and stored, forward
  base(x) + (x A^T B^T) * alpha / r;
- micro-batches of 2 rows of 6 random token ids with some positions masked out (weight 0);
- 2 optimizer steps, each accumulating the gradients of 2 micro-batches of (sum of weight * nll) /
  (the step's weighted token count), clipped with torch.nn.utils.clip_grad_norm_ at a max norm below
  both steps' norms, then torch.optim.AdamW with weight decay.
Recorded: each micro-batch's loss, each step's gradient norm, the LoRA gradients after accumulation
and before clipping, and the LoRA weights after each step.

Everything runs in float64, so the fixture is the exact result of these semantics to ~1e-15, and
the tests measure the engines' float32 error alone. Before training, the script checks its forward
pass against the fixture's own float64 reference loss (reference.json, computed by an independent
numpy implementation) so that the two independent implementations agree.
"""
import collections
import hashlib
import json
import math
import os
import struct

import torch

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared", "fixtures")
OUT = os.path.join(ROOT, "test", "fixtures", "torch-train")
MODELS = ["tiny-rwkv", "tiny-neox-parallel", "tiny-neox-sequential"]
# ditty's default LoRA targets (src/lora/config.ts), matched as PEFT does: path == t or endswith "." + t
TARGETS = {"rwkv": ["key", "value", "receptance"], "gpt_neox": ["query_key_value"]}
R, ALPHA = 4, 8
# eps 1e-4, not torch's 1e-8: Adam's first update is lr * g / (|g| + eps). The engines' float32
# gradients differ from these by up to ~1e-7 absolute on elements of a tensor whose gradients are
# ~1e-2, so with eps 1e-8 an element whose gradient is within that noise of 0 moves by anything in
# [-lr, lr], and with 1e-5 by up to lr * 1e-2 (measured: 1.3e-4 of a tensor's norm on tfjs wasm).
# With 1e-4 such elements move in proportion to their gradients, off by at most lr * 1e-3, while
# elements with gradients of 1e-3 and more still move by about lr * sign(g).
LR, BETAS, EPS, WEIGHT_DECAY = 1e-2, (0.9, 0.999), 1e-4, 0.1
ROWS, LENGTH, MICRO, STEPS = 2, 6, 2, 2

ST_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = ST_DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        data = bytearray(raw[8 + n + b:8 + n + end])
        out[name] = torch.frombuffer(data, dtype=dtype).reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


class Lora:
    """The adapters by module path: A [r, in], B [out, r] (float64 leaves), scaling alpha / r."""

    def __init__(self, initial):
        self.a = {p: ab[0].to(torch.float64).requires_grad_() for p, ab in initial.items()}
        self.b = {p: ab[1].to(torch.float64).requires_grad_() for p, ab in initial.items()}
        self.scaling = ALPHA / R

    def params(self):
        return [t for p in self.a for t in (self.a[p], self.b[p])]


def linear(w, path, x, lora, bias=None):
    y = x @ w[f"{path}.weight"].T
    if bias is not None:
        y = y + bias
    if lora is not None and path in lora.a:
        y = y + (x @ lora.a[path].T @ lora.b[path].T) * lora.scaling
    return y


def layer_norm(w, name, x, eps):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps)


def shift(x):
    """transformers' ZeroPad2d((0, 0, 1, -1)): position t sees t - 1, position 0 sees zeros."""
    return torch.nn.functional.pad(x, (0, 0, 1, -1))


def rwkv_hidden(cfg, w, ids, lora):
    eps = cfg["layer_norm_epsilon"]
    x = w["rwkv.embeddings.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        b = f"rwkv.blocks.{i}"
        if i == 0:
            x = layer_norm(w, f"{b}.pre_ln", x, eps)
        z = layer_norm(w, f"{b}.ln1", x, eps)
        zs = shift(z)
        a = f"{b}.attention"
        mix = lambda m: z * w[f"{a}.time_mix_{m}"] + zs * (1 - w[f"{a}.time_mix_{m}"])
        k = linear(w, f"{a}.key", mix("key"), lora)
        v = linear(w, f"{a}.value", mix("value"), lora)
        r = torch.sigmoid(linear(w, f"{a}.receptance", mix("receptance"), lora))
        x = x + linear(w, f"{a}.output", r * wkv(w[f"{a}.time_decay"], w[f"{a}.time_first"], k, v), lora)
        z = layer_norm(w, f"{b}.ln2", x, eps)
        zs = shift(z)
        f = f"{b}.feed_forward"
        mix = lambda m: z * w[f"{f}.time_mix_{m}"] + zs * (1 - w[f"{f}.time_mix_{m}"])
        k = torch.square(torch.relu(linear(w, f"{f}.key", mix("key"), lora)))
        x = x + torch.sigmoid(linear(w, f"{f}.receptance", mix("receptance"), lora)) * linear(w, f"{f}.value", k, lora)
    return layer_norm(w, "rwkv.ln_out", x, eps)


def wkv(time_decay, time_first, k, v):
    """transformers' rwkv_linear_attention_cpu: the recurrence with a running maximum exponent."""
    decay = -torch.exp(time_decay)
    num = torch.zeros_like(k[:, 0])
    den = torch.zeros_like(k[:, 0])
    mx = torch.zeros_like(k[:, 0]) - 1e38
    out = []
    for t in range(k.shape[1]):
        kt, vt = k[:, t], v[:, t]
        m = torch.maximum(mx, kt + time_first)
        e1, e2 = torch.exp(mx - m), torch.exp(kt + time_first - m)
        out.append((e1 * num + e2 * vt) / (e1 * den + e2))
        m2 = torch.maximum(mx + decay, kt)
        e1, e2 = torch.exp(mx + decay - m2), torch.exp(kt - m2)
        num, den, mx = e1 * num + e2 * vt, e1 * den + e2, m2
    return torch.stack(out, 1)


def gelu(name, x):
    if name == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if name == "gelu_fast":
        return 0.5 * x * (1 + torch.tanh(0.7978845608 * x * (1 + 0.044715 * x * x)))
    if name == "gelu_new":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(name)


def neox_hidden(cfg, w, ids, lora):
    eps = cfg["layer_norm_eps"]
    H, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    d = H // heads
    R_ = int(d * cfg["rotary_pct"])
    B, T = ids.shape
    inv_freq = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, R_, 2) / R_))
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    causal = torch.ones(T, T, dtype=torch.bool).tril()

    def rotate(x):
        rot, rest = x[..., :R_], x[..., R_:]
        half = torch.cat([-rot[..., R_ // 2:], rot[..., :R_ // 2]], -1)
        return torch.cat([rot * cos + half * sin, rest], -1)

    def attention(i, h):
        a = f"gpt_neox.layers.{i}.attention"
        qkv = linear(w, f"{a}.query_key_value", h, lora, w[f"{a}.query_key_value.bias"]).view(B, T, heads, 3 * d).transpose(1, 2)
        q, k, v = rotate(qkv[..., :d]), rotate(qkv[..., d:2 * d]), qkv[..., 2 * d:]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        p = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
        o = (p @ v).transpose(1, 2).reshape(B, T, H)
        return linear(w, f"{a}.dense", o, lora, w[f"{a}.dense.bias"])

    def mlp(i, h):
        m = f"gpt_neox.layers.{i}.mlp"
        u = gelu(cfg["hidden_act"], linear(w, f"{m}.dense_h_to_4h", h, lora, w[f"{m}.dense_h_to_4h.bias"]))
        return linear(w, f"{m}.dense_4h_to_h", u, lora, w[f"{m}.dense_4h_to_h.bias"])

    x = w["gpt_neox.embed_in.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        l = f"gpt_neox.layers.{i}"
        att = attention(i, layer_norm(w, f"{l}.input_layernorm", x, eps))
        if cfg["use_parallel_residual"]:
            x = x + att + mlp(i, layer_norm(w, f"{l}.post_attention_layernorm", x, eps))
        else:
            y = x + att
            x = y + mlp(i, layer_norm(w, f"{l}.post_attention_layernorm", y, eps))
    return layer_norm(w, "gpt_neox.final_layer_norm", x, eps)


def nll_sum(cfg, w, mb, lora):
    """sum over positions of weight * (logsumexp(logits) - logits[target])."""
    ids = torch.tensor(mb["input"]).view(mb["rows"], mb["length"])
    hidden = (rwkv_hidden if cfg["model_type"] == "rwkv" else neox_hidden)(cfg, w, ids, lora)
    head = "head.weight" if cfg["model_type"] == "rwkv" else "embed_out.weight"
    logits = hidden.reshape(-1, hidden.shape[-1]) @ w[head].T
    target = torch.tensor(mb["target"])
    nll = torch.logsumexp(logits, -1) - logits.gather(1, target[:, None])[:, 0]
    return (nll * torch.tensor(mb["weight"], dtype=torch.float64)).sum()


def targets_of(cfg, w):
    paths = [n[:-len(".weight")] for n, t in w.items() if n.endswith(".weight") and t.dim() == 2
             and not any(s in n for s in ("embed", "head."))]
    return [p for p in paths if any(p == t or p.endswith("." + t) for t in TARGETS[cfg["model_type"]])]


def peft_key(path, which):
    return f"base_model.model.{path}.lora_{which}.weight"


def make(name):
    folder = os.path.join(SHARED, name)
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(folder, "reference.json")) as f:
        reference = json.load(f)
    stored = read_safetensors(os.path.join(folder, "model.safetensors"))

    # this forward pass against the fixture's independent float64 reference, on the stored weights
    w = {k: v.to(torch.float64) for k, v in stored.items()}
    worst = 0.0
    with torch.no_grad():
        for text in reference["texts"]:
            ids = text["ids"]
            T = len(ids) - 1
            mb = {"rows": 1, "length": T, "input": ids[:-1], "target": ids[1:], "weight": [1] * T}
            loss = nll_sum(cfg, w, mb, None).item() / T
            worst = max(worst, abs(loss - text["loss"]) / abs(text["loss"]))
    assert worst < 1e-9, f"{name}: this forward pass is {worst:.1e} from reference.json"

    # the 16-bit base
    bf16 = collections.OrderedDict((k, v.to(torch.bfloat16)) for k, v in stored.items())
    h = hashlib.sha256()
    for k in sorted(bf16):
        h.update(k.encode())
        h.update(bf16[k].contiguous().view(torch.int16).numpy().tobytes())
    w = {k: v.to(torch.float64) for k, v in bf16.items()}

    g = torch.Generator().manual_seed(20261130 + MODELS.index(name))
    initial = collections.OrderedDict()
    for p in targets_of(cfg, w):
        out_f, in_f = w[f"{p}.weight"].shape
        a = (torch.rand(R, in_f, generator=g, dtype=torch.float32) * 2 - 1) / math.sqrt(in_f)
        b = (torch.rand(out_f, R, generator=g, dtype=torch.float32) * 2 - 1) * 0.2
        initial[p] = (a, b)

    V = cfg["vocab_size"]
    steps = []
    for s in range(STEPS):
        micro = []
        for m in range(MICRO):
            n = ROWS * LENGTH
            ids = torch.randint(0, V, (2, n), generator=g).tolist()
            weight = [0 if (i * 7 + s + m) % 5 == 3 else 1 for i in range(n)]
            micro.append({"rows": ROWS, "length": LENGTH, "input": ids[0], "target": ids[1], "weight": weight})
        steps.append({"micro_batches": micro})

    def run(max_norm):
        lora = Lora(initial)
        opt = torch.optim.AdamW(lora.params(), lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
        results = []
        for step in steps:
            opt.zero_grad()
            normalizer = sum(sum(mb["weight"]) for mb in step["micro_batches"])
            losses = []
            for mb in step["micro_batches"]:
                loss = nll_sum(cfg, w, mb, lora) / normalizer
                loss.backward()
                losses.append(loss.item())
            grads = {p: (lora.a[p].grad.clone(), lora.b[p].grad.clone()) for p in lora.a}
            norm = torch.nn.utils.clip_grad_norm_(lora.params(), max_norm).item()
            opt.step()
            weights = {p: (lora.a[p].detach().clone(), lora.b[p].detach().clone()) for p in lora.a}
            results.append({"losses": losses, "normalizer": normalizer, "norm": norm, "grads": grads, "weights": weights})
        return results

    # a max norm that clips both steps: half the smaller norm of an unclipped run, 2 significant digits
    free = run(float("inf"))
    max_norm = float(f"{0.5 * min(r['norm'] for r in free):.2g}")
    results = run(max_norm)
    assert all(r["norm"] > 1.5 * max_norm for r in results), "clipping must be active on both steps"

    tensors = collections.OrderedDict()
    for p, (a, b) in initial.items():
        tensors[f"initial/{peft_key(p, 'A')}"] = a
        tensors[f"initial/{peft_key(p, 'B')}"] = b
    for i, r in enumerate(results):
        for kind in ("grads", "weights"):
            for p, (a, b) in r[kind].items():
                tensors[f"step{i + 1}/{kind}/{peft_key(p, 'A')}"] = a
                tensors[f"step{i + 1}/{kind}/{peft_key(p, 'B')}"] = b
    write_safetensors(os.path.join(OUT, f"{name}.safetensors"), tensors)
    for i, r in enumerate(results):
        steps[i].update({
            "micro_batch_losses": r["losses"], "loss": sum(r["losses"]), "normalizer": r["normalizer"], "grad_norm": r["norm"],
        })
    return {
        "model": name,
        "forward_vs_reference_json": worst,
        "base": {"dtype": "BF16", "sha256_sorted_names_and_bytes": h.hexdigest()},
        "lora": {"r": R, "alpha": ALPHA, "dropout": 0, "target_modules": TARGETS[cfg["model_type"]], "paths": list(initial)},
        "adamw": {"lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "epsilon": EPS, "weight_decay": WEIGHT_DECAY},
        "max_grad_norm": max_norm,
        "steps": steps,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in MODELS:
        info = make(name)
        info.update({"generator": "scripts/make-torch-train-fixtures.py", "torch": torch.__version__,
                     "tensors": f"{name}.safetensors: initial/<PEFT key>, step<i>/grads/<PEFT key> (after accumulation, before clipping), step<i>/weights/<PEFT key> (after the step)"})
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        print(name, f"forward vs reference.json {info['forward_vs_reference_json']:.1e}", "max_grad_norm", info["max_grad_norm"],
              "losses", [round(s["loss"], 6) for s in info["steps"]], "norms", [round(s["grad_norm"], 4) for s in info["steps"]],
              os.path.getsize(os.path.join(OUT, f"{name}.safetensors")), "bytes")


if __name__ == "__main__":
    main()
