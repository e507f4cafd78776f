#!/usr/bin/env python3
"""The measured ceilings MFU is computed against: a dense bf16 GEMM (8192^3 on random data, three
input sets rotated so L2 does not serve them) and a device-to-device copy, both median of CUDA-event
timings after a warm-up. Without CUDA (dry mode) it measures a float32 GEMM on the CPU instead."""
import json
import statistics
import time

import torch

cuda = torch.cuda.is_available()
n = 8192 if cuda else 512
dtype = torch.bfloat16 if cuda else torch.float32
dev = 'cuda' if cuda else 'cpu'
sets = [(torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)) for _ in range(3)]


def timed(fn, reps):
    out = []
    for i in range(reps):
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn(i)
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b) / 1e3)
        else:
            s = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - s)
    return statistics.median(out)


def gemm(i):
    x, y = sets[i % 3]
    torch.matmul(x, y)


timed(gemm, 3)
gemm_s = timed(gemm, 20)
result = {'device': torch.cuda.get_device_name() if cuda else 'cpu', 'dtype': str(dtype), 'n': n,
          'gemmFlopsPerSecond': 2 * n ** 3 / gemm_s}
if cuda:
    src = torch.empty(2 ** 30, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    timed(lambda i: dst.copy_(src), 3)
    copy_s = timed(lambda i: dst.copy_(src), 20)
    result['copyBytesPerSecond'] = 2 * src.numel() / copy_s
print(json.dumps(result))
