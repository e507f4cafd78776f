"""PyTorch's causal attention forward + backward at the shape scripts/neox-bench.mjs times natively:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 scripts/neox-bench-torch.py [B H T d] [threads] [reps]
The textbook composition (scores, mask, softmax, P V; autograd for the gradients), as the tfjs engine
and transformers' GPT-NeoX eager attention compute it; scaled_dot_product_attention where the
installed torch has it. Prints the best wall and CPU (all threads) time of `reps` runs."""
import math
import sys
import time

import torch

args = [int(a) for a in sys.argv[1:]]
B, H, T, d = args[:4] if len(args) >= 4 else (1, 12, 512, 64)
threads = args[4] if len(args) > 4 else 2
reps = args[5] if len(args) > 5 else 10
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
q, k, v, dy = (torch.rand(B, H, T, d, generator=g) * 2 - 1 for _ in range(4))
mask = torch.full((T, T), -1e30).triu(1)
sdpa = getattr(torch.nn.functional, "scaled_dot_product_attention", None)


def composed(q, k, v):
    p = torch.softmax(q @ k.transpose(-1, -2) * (1 / math.sqrt(d)) + mask, dim=-1)
    return p @ v


def fused(q, k, v):
    return sdpa(q, k, v, is_causal=True)


def best(fn):
    fn()
    wall = cpu = math.inf
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall * 1e3, cpu * 1e3


for name, attn in [("composed", composed)] + ([("sdpa", fused)] if sdpa else []):
    def forward():
        with torch.no_grad():
            attn(q, k, v)

    def both():
        x, y, z = (t.clone().requires_grad_() for t in (q, k, v))
        (attn(x, y, z) * dy).sum().backward()

    fw, fc = best(forward)
    bw, bc = best(both)
    print(f"torch {torch.__version__} {name} B={B} H={H} T={T} d={d}, {threads} threads: forward {fw:.2f} ms (cpu {fc:.2f} ms), "
          f"forward+backward {bw:.2f} ms (cpu {bc:.2f} ms)")
