#!/usr/bin/env python3
"""The GPU peer of `ditty bench`: transformers + PEFT bf16 LoRA, one training step timed on CUDA.

Same shapes as src/bench/shapes.ts (random weights, no download), block 512, batch 1, LoRA r 8 on
ditty's default targets, AdamW on the LoRA weights, optionally with transformers' gradient
checkpointing. Prints one JSON line: tokens/s, step seconds (median of the timed steps, CUDA events),
peak device memory, the WKV path transformers took for RWKV (its CUDA kernel or the per-token loop).
Without CUDA (the dry mode of scripts/gpu-check.sh) it runs the same code on the CPU with a tiny shape.
"""
import argparse
import json
import statistics
import sys

SHAPES = {
    # the config.json fields of src/bench/shapes.ts
    'rwkv-14b': dict(model_type='rwkv', hidden_size=5120, num_hidden_layers=40, attention_hidden_size=5120,
                     intermediate_size=20480, vocab_size=50277, context_length=1024, layer_norm_epsilon=1e-5),
    'dolly-v2-12b': dict(model_type='gpt_neox', hidden_size=5120, num_hidden_layers=36, num_attention_heads=40,
                         intermediate_size=20480, vocab_size=50280, rotary_pct=0.25, rotary_emb_base=10000,
                         max_position_embeddings=2048, layer_norm_eps=1e-5, use_parallel_residual=True,
                         hidden_act='gelu'),
}
# the dry mode's stand-ins: the same architectures, tiny
SHAPES['rwkv-tiny'] = dict(SHAPES['rwkv-14b'], hidden_size=64, num_hidden_layers=2, attention_hidden_size=64,
                           intermediate_size=256, vocab_size=512, context_length=256)
SHAPES['neox-tiny'] = dict(SHAPES['dolly-v2-12b'], hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=256, vocab_size=512)
# src/config/schema.ts DEFAULT_TARGET_MODULES
TARGETS = {'rwkv': ['key', 'value', 'receptance'], 'gpt_neox': ['query_key_value']}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', choices=sorted(SHAPES), required=True)
    p.add_argument('--block-size', type=int, default=512)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--lora-r', type=int, default=8)
    p.add_argument('--checkpointing', action='store_true', help="transformers' gradient checkpointing")
    a = p.parse_args()

    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(json.dumps({'model': a.model, 'skipped': f'{e.name} is not installed'}))
        return
    shape = dict(SHAPES[a.model])
    arch = shape.pop('model_type')
    cls_names = {'rwkv': ('RwkvConfig', 'RwkvForCausalLM'), 'gpt_neox': ('GPTNeoXConfig', 'GPTNeoXForCausalLM')}[arch]
    if not all(hasattr(transformers, n) for n in cls_names):
        print(json.dumps({'model': a.model, 'skipped': f'transformers {transformers.__version__} has no {cls_names[1]}'}))
        return
    config_cls, model_cls = (getattr(transformers, n) for n in cls_names)
    cuda = torch.cuda.is_available()
    device = torch.device('cuda' if cuda else 'cpu')
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    config = config_cls(**shape, use_cache=False, tie_word_embeddings=False)
    with device:
        model = model_cls(config).to(dtype)
    if a.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        model.enable_input_require_grads()
    lcfg = peft.LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.05, target_modules=TARGETS[arch],
                           task_type='CAUSAL_LM')
    model = peft.get_peft_model(model, lcfg)
    model.train()
    trainable = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, shape['vocab_size'], (1, a.block_size), device=device)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)

    wkv_path = None
    if arch == 'rwkv':
        from transformers.models.rwkv import modeling_rwkv as mr
        wkv_path = 'cuda kernel' if getattr(mr, 'rwkv_cuda_kernel', None) is not None else 'per-token loop'
    step()  # warm-up: allocations, kernel compilation
    times = []
    for _ in range(a.steps):
        if cuda:
            t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.reset_peak_memory_stats()
            t0.record()
            step()
            t1.record()
            torch.cuda.synchronize()
            times.append(t0.elapsed_time(t1) / 1e3)
        else:
            import time
            s = time.perf_counter()
            step()
            times.append(time.perf_counter() - s)
    sec = statistics.median(times)
    print(json.dumps({
        'model': a.model, 'device': torch.cuda.get_device_name() if cuda else 'cpu', 'dtype': str(dtype),
        'checkpointing': a.checkpointing, 'blockSize': a.block_size, 'stepSeconds': sec,
        'tokensPerSecond': a.block_size / sec, 'steps': times,
        'peakDeviceBytes': torch.cuda.max_memory_allocated() if cuda else None,
        'wkvPath': wkv_path, 'trainable': sum(q.numel() for q in trainable),
        'versions': {'torch': torch.__version__, 'transformers': transformers.__version__, 'peft': peft.__version__},
    }))


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # one line for the table; the traceback goes to the log
        import traceback
        traceback.print_exc()
        print(json.dumps({'skipped': f'{type(e).__name__}: {e}'.splitlines()[0]}))
        sys.exit(1)
