#!/usr/bin/python3
"""Writes test/fixtures/torch/: small checkpoints written by real torch.save, and manifest.json.

Run with Debian's PyTorch (the pyenv python3 on PATH has no torch):

    /usr/bin/python3 scripts/make-torch-fixtures.py

The tests (test/io/torch-real.test.ts) read the committed output with ditty's reader and compare
every tensor with the manifest; they never run python. Re-running gives the same files for the
same torch version except the legacy format's storage keys (they are memory addresses).

Storages "saved from cuda": this machine has no GPU, so the storage location is made "cuda:0" by a
tagger registered with torch.serialization.register_package (the hook torch itself uses to tag cpu
and cuda storages), at a priority above torch's own. The bytes written are what torch.save writes
for a cuda storage: the tag in the pickle, and the storage data copied to the host. The script
checks the tag took: torch.load without map_location must fail for want of CUDA, and with
map_location="cpu" must give the values back.
"""
import collections
import hashlib
import json
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "torch")

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}

# Storages whose data_ptr is in here are tagged "cuda:0" (see the module docstring).
FAKE_CUDA = set()


def fake_cuda_tagger(storage):
    return "cuda:0" if storage.data_ptr() in FAKE_CUDA else None


torch.serialization.register_package(0, fake_cuda_tagger, lambda obj, location: None)


def describe(t):
    """What a reader must give back: dtype, shape, sha256 of the row-major bytes, small values."""
    c = t.detach().contiguous()
    raw = c.reshape(-1).view(torch.uint8) if c.dtype != torch.bool else c.to(torch.uint8)
    entry = {
        "dtype": DTYPE_NAMES[c.dtype],
        "shape": list(c.shape),
        "sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest(),
    }
    if c.numel() <= 64:
        values = c.to(torch.float64).flatten().tolist()
        # float64 holds every value here exactly except int64 beyond 2^53, checked by hash only
        if c.dtype != torch.int64 or all(abs(int(v)) < 2 ** 53 for v in c.flatten().tolist()):
            # JSON has no inf or nan: those are written as strings
            entry["values"] = [v if v == v and abs(v) != float("inf") else str(v) for v in values]
    return entry


def tensors_of(obj):
    """The name -> tensor dict ditty reads: the top level, or its "state_dict" entry."""
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return obj["state_dict"]


def save(manifest, name, obj, legacy, note, expect_requires_grad=False):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    back = torch.load(path, map_location="cpu")
    for k, v in tensors_of(obj).items():
        w = tensors_of(back)[k]
        assert w.dtype == v.dtype and w.shape == v.shape and torch.equal(w, v.detach()), (name, k)
        assert w.requires_grad == (expect_requires_grad and v.requires_grad), (name, k)
    manifest["files"][name] = {
        "format": "legacy" if legacy else "zip",
        "note": note,
        "tensors": {k: describe(v) for k, v in tensors_of(obj).items()},
    }


def dtypes_dict():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    return collections.OrderedDict([
        ("f32", x.float()),
        ("f16", x.half()),
        ("bf16", x.bfloat16()),
        ("f64", x.clone()),
        ("i64", torch.tensor([0, 1, -1, 2 ** 40 + 3, -(2 ** 52), 7], dtype=torch.int64)),
        ("i64_big", torch.tensor([2 ** 62 + 1, -(2 ** 63)], dtype=torch.int64)),
        ("i32", torch.tensor([[-(2 ** 31), 2 ** 31 - 1], [5, -6]], dtype=torch.int32)),
        ("i8", torch.tensor([-128, 127, 0], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
        ("bool", torch.tensor([[True, False, True], [False, False, True]])),
        ("f32_scalar", torch.tensor(3.5)),
        ("f32_empty", torch.zeros(0, 4)),
        ("f16_special", torch.tensor([float("inf"), -0.0, 6.1e-5, 65504.0, 1e-7], dtype=torch.float16)),
        ("bf16_special", torch.tensor([float("-inf"), 1e38, 1e-40, -3.0e-3], dtype=torch.bfloat16)),
    ])


def views_dict():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    half = (torch.arange(12, dtype=torch.float32) / 4 - 1).bfloat16().reshape(3, 4)
    d = collections.OrderedDict([
        ("base", base),
        ("transposed", base.t()),                # stride (1, 6)
        ("row2", base[2]),                       # offset 12
        ("col3", base[:, 3]),                    # offset 3, stride 6
        ("block", base[1:3, 2:5]),               # offset 8, stride (6, 1)
        ("every_other", base[::2, 1::2]),        # offset 1, stride (12, 2)
        ("permuted", base.reshape(2, 3, 4).permute(2, 0, 1)),
        ("element", base[3, 5]),                 # a 0-d view at offset 23
        ("bf16_base", half),
        ("bf16_transposed", half.t()),
        ("bf16_tail", half.flatten()[5:]),
    ])
    # a view into the middle of a storage nothing else names: the whole storage is still saved
    d["narrow_only"] = torch.arange(10, dtype=torch.int64)[3:7]
    return d


def module():
    torch.manual_seed(3)
    return torch.nn.Sequential(collections.OrderedDict([
        ("embed", torch.nn.Embedding(5, 4)),
        ("proj", torch.nn.Linear(4, 3)),
        ("norm", torch.nn.LayerNorm(3)),
        ("bn", torch.nn.BatchNorm1d(3)),
    ]))


def manifest_text(manifest):
    """JSON with one line per tensor, so that a regenerated fixture diffs tensor by tensor."""
    files = []
    for name, entry in manifest["files"].items():
        tensors = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in entry["tensors"].items())
        head = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in entry.items() if k != "tensors")
        files.append(f"  {json.dumps(name)}: {{{head}, \"tensors\": {{\n{tensors}\n  }}}}")
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items() if k != "files")
    return "{\n" + head + ",\n \"files\": {\n" + ",\n".join(files) + "\n }\n}\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin") or f.endswith(".json") or os.path.isdir(os.path.join(OUT, f)):
            p = os.path.join(OUT, f)
            if os.path.isdir(p):
                for g in os.listdir(p):
                    os.remove(os.path.join(p, g))
                os.rmdir(p)
            else:
                os.remove(p)
    manifest = {
        "generator": "scripts/make-torch-fixtures.py",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "files": {},
    }
    for legacy in (False, True):
        fmt = "legacy" if legacy else "zip"
        save(manifest, f"{fmt}-dtypes.bin", dtypes_dict(), legacy, "one tensor per dtype, scalars, empty, specials")
        save(manifest, f"{fmt}-views.bin", views_dict(), legacy, "views of shared storages: transposed, offsets, strides, 0-d")
        m = module()
        sd = m.state_dict()
        assert hasattr(sd, "_metadata")
        save(manifest, f"{fmt}-state-dict.bin", sd, legacy, "nn.Module.state_dict() (an OrderedDict with _metadata, BatchNorm buffers)")
        save(manifest, f"{fmt}-keep-vars.bin", m.state_dict(keep_vars=True), legacy,
             "state_dict(keep_vars=True): Parameters (requires_grad) and buffers", expect_requires_grad=True)
        cuda = collections.OrderedDict([("w", torch.linspace(-1, 1, 6).reshape(2, 3)), ("h", torch.arange(4, dtype=torch.float16))])
        cuda["w_t"] = cuda["w"].t()
        FAKE_CUDA.update(t.storage().data_ptr() for t in cuda.values())
        save(manifest, f"{fmt}-cuda.bin", cuda, legacy, "storages tagged cuda:0 (a tagger registered with torch.serialization.register_package)")
        FAKE_CUDA.clear()
        try:
            torch.load(os.path.join(OUT, f"{fmt}-cuda.bin"))
            raise AssertionError("the cuda tag did not take")
        except RuntimeError as e:
            assert "CUDA" in str(e), e
        wrapped = {"epoch": 3, "state_dict": collections.OrderedDict([("a", torch.ones(2, 2)), ("b", torch.zeros(3, dtype=torch.bfloat16))])}
        save(manifest, f"{fmt}-wrapped.bin", wrapped, legacy, "a training checkpoint: {epoch, state_dict}")

    # a sharded model folder as transformers' save_pretrained writes it (zip shards and an index)
    shard_dir = os.path.join(OUT, "sharded")
    os.makedirs(shard_dir)
    g = torch.Generator().manual_seed(5)
    shards = [
        collections.OrderedDict([("gpt_neox.embed_in.weight", torch.randn(6, 4, generator=g).bfloat16()),
                                 ("gpt_neox.layers.0.attention.dense.weight", torch.randn(4, 4, generator=g).bfloat16())]),
        collections.OrderedDict([("gpt_neox.layers.0.attention.dense.bias", torch.randn(4, generator=g).bfloat16()),
                                 ("embed_out.weight", torch.randn(6, 4, generator=g).bfloat16())]),
    ]
    weight_map, total, entry = {}, 0, {"format": "sharded", "note": "two zip shards and pytorch_model.bin.index.json", "tensors": {}}
    for i, sd in enumerate(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(sd, os.path.join(shard_dir, name))
        for k, v in sd.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
            entry["tensors"][k] = describe(v)
    with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")
    manifest["files"]["sharded"] = entry

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        f.write(manifest_text(manifest))
    for name in sorted(manifest["files"]):
        p = os.path.join(OUT, name)
        size = sum(os.path.getsize(os.path.join(p, x)) for x in os.listdir(p)) if os.path.isdir(p) else os.path.getsize(p)
        print(f"{name}: {size} bytes, {len(manifest['files'][name]['tensors'])} tensors")


if __name__ == "__main__":
    main()
