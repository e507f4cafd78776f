#!/usr/bin/env python3
"""PyTorch peer of `ditty bench`: one LoRA training step on random weights, timed on the CPU.

The model math is transformers' RwkvForCausalLM / GPTNeoXForCausalLM (eager, training mode)
written out here, since transformers is not a dependency:
- RWKV-4: pre_ln on block 0, ln1 -> time-mix -> key/value/receptance -> the CPU WKV path
  transformers takes without its CUDA kernel (rwkv_linear_attention_cpu: the stable aa/bb/pp
  recurrence looped over time in torch ops, autograd through the loop) -> output; ln2 -> channel mix
  (relu^2 key, value, sigmoid receptance). Training mode: no rescale_every.
- GPT-NeoX: parallel residual, fused query_key_value with partial rotary (rotate_half, cos/sin
  cache), eager attention as transformers' _attn (baddbmm scores, boolean causal mask with
  torch.where, softmax, matmul), gelu (erf) MLP; dropouts of p=0 left out (they return the input).
LoRA with PEFT semantics: y = base(x) + B(A(dropout(x))) * alpha/r on every linear whose name ends
with a target; frozen float32 base weights (requires_grad False).
One step = forward on batch x block random tokens, mean cross-entropy over all positions against
random targets (as ditty's bench: separate input and target tokens, every position weighted),
backward, AdamW (lr 1e-4, weight decay 0 as ditty's bench), zero_grad.
"""
import argparse
import json
import math
import os
import sys
import time

SHAPES = {
    # the Hugging Face config.json fields that matter, as in src/bench/shapes.ts
    'rwkv-169m': dict(model_type='rwkv', hidden_size=768, num_hidden_layers=12, attention_hidden_size=768,
                      intermediate_size=3072, vocab_size=50277, layer_norm_epsilon=1e-5),
    'pythia-160m': dict(model_type='gpt_neox', hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, vocab_size=50304, rotary_pct=0.25, rotary_emb_base=10000,
                        max_position_embeddings=2048, layer_norm_eps=1e-5, use_parallel_residual=True,
                        hidden_act='gelu'),
}
# ditty's DEFAULT_TARGET_MODULES (src/config/schema.ts), matched by suffix as PEFT does
DITTY_TARGETS = {
    'rwkv': ['key', 'value', 'receptance'],
    'gpt_neox': ['query_key_value'],
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', choices=sorted(SHAPES), default='rwkv-169m')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--steps', type=int, default=3, help='timed steps after one warm-up step')
    p.add_argument('--block-size', type=int, default=512)
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--lora-r', type=int, default=8)
    p.add_argument('--targets', default='',
                   help="comma-separated LoRA target suffixes (default: ditty's defaults for the architecture)")
    p.add_argument('--json', action='store_true', help='print one JSON line on stdout')
    return p.parse_args()


args = parse_args()
# OpenBLAS (Debian's pthread build) sizes its own pool from these, read at load time:
# torch.set_num_threads does not reach it, so pin them before torch is imported.
os.environ['OMP_NUM_THREADS'] = str(args.threads)
os.environ['OPENBLAS_NUM_THREADS'] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)


class LoraLinear(nn.Module):
    """PEFT's lora.Linear: base(x) + lora_B(lora_A(dropout(x))) * scaling."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float):
        super().__init__()
        self.base_layer = base
        self.lora_dropout = nn.Dropout(dropout)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha / r
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # PEFT's init of A
        nn.init.normal_(self.lora_B.weight, std=0.01)  # PEFT zeros B; small values keep every gradient alive

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


# ---------------------------------------------------------------- RWKV-4 (transformers RwkvForCausalLM)

def rwkv_linear_attention_cpu(time_decay, time_first, key, value):
    """transformers' rwkv_linear_attention_cpu (state None, return_state False)."""
    _, seq_length, _ = key.size()
    output = torch.zeros_like(key)
    num_state = torch.zeros_like(key[:, 0], dtype=torch.float32)
    den_state = torch.zeros_like(key[:, 0], dtype=torch.float32)
    max_state = torch.zeros_like(key[:, 0], dtype=torch.float32) - 1e38
    time_decay = -torch.exp(time_decay)
    for current_index in range(seq_length):
        current_key = key[:, current_index].float()
        current_value = value[:, current_index]
        max_for_output = torch.maximum(max_state, current_key + time_first)
        e1 = torch.exp(max_state - max_for_output)
        e2 = torch.exp(current_key + time_first - max_for_output)
        numerator = e1 * num_state + e2 * current_value
        denominator = e1 * den_state + e2
        output[:, current_index] = (numerator / denominator).to(output.dtype)
        max_for_state = torch.maximum(max_state + time_decay, current_key)
        e1 = torch.exp(max_state + time_decay - max_for_state)
        e2 = torch.exp(current_key - max_for_state)
        num_state = e1 * num_state + e2 * current_value
        den_state = e1 * den_state + e2
        max_state = max_for_state
    return output


class RwkvSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, a = c['hidden_size'], c['attention_hidden_size']
        self.time_decay = nn.Parameter(torch.empty(a))
        self.time_first = nn.Parameter(torch.empty(a))
        self.time_mix_key = nn.Parameter(torch.empty(1, 1, h))
        self.time_mix_value = nn.Parameter(torch.empty(1, 1, h))
        self.time_mix_receptance = nn.Parameter(torch.empty(1, 1, h))
        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))
        self.key = nn.Linear(h, a, bias=False)
        self.value = nn.Linear(h, a, bias=False)
        self.receptance = nn.Linear(h, a, bias=False)
        self.output = nn.Linear(a, h, bias=False)

    def forward(self, hidden):
        shifted = self.time_shift(hidden)
        key = hidden * self.time_mix_key + shifted * (1 - self.time_mix_key)
        value = hidden * self.time_mix_value + shifted * (1 - self.time_mix_value)
        receptance = hidden * self.time_mix_receptance + shifted * (1 - self.time_mix_receptance)
        key = self.key(key)
        value = self.value(value)
        receptance = torch.sigmoid(self.receptance(receptance))
        rwkv = rwkv_linear_attention_cpu(self.time_decay, self.time_first, key, value)
        return self.output(receptance * rwkv)


class RwkvFeedForward(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c['hidden_size'], c['intermediate_size']
        self.time_shift = nn.ZeroPad2d((0, 0, 1, -1))
        self.time_mix_key = nn.Parameter(torch.empty(1, 1, h))
        self.time_mix_receptance = nn.Parameter(torch.empty(1, 1, h))
        self.key = nn.Linear(h, i, bias=False)
        self.receptance = nn.Linear(h, h, bias=False)
        self.value = nn.Linear(i, h, bias=False)

    def forward(self, hidden):
        shifted = self.time_shift(hidden)
        key = hidden * self.time_mix_key + shifted * (1 - self.time_mix_key)
        receptance = hidden * self.time_mix_receptance + shifted * (1 - self.time_mix_receptance)
        key = torch.square(torch.relu(self.key(key)))
        value = self.value(key)
        receptance = torch.sigmoid(self.receptance(receptance))
        return receptance * value


class RwkvBlock(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        self.layer_id = layer_id
        eps = c['layer_norm_epsilon']
        if layer_id == 0:
            self.pre_ln = nn.LayerNorm(c['hidden_size'], eps=eps)
        self.ln1 = nn.LayerNorm(c['hidden_size'], eps=eps)
        self.ln2 = nn.LayerNorm(c['hidden_size'], eps=eps)
        self.attention = RwkvSelfAttention(c)
        self.feed_forward = RwkvFeedForward(c)

    def forward(self, hidden):
        if self.layer_id == 0:
            hidden = self.pre_ln(hidden)
        hidden = hidden + self.attention(self.ln1(hidden))
        hidden = hidden + self.feed_forward(self.ln2(hidden))
        return hidden


class RwkvForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.blocks = nn.ModuleList([RwkvBlock(c, i) for i in range(c['num_hidden_layers'])])
        self.ln_out = nn.LayerNorm(c['hidden_size'], eps=c['layer_norm_epsilon'])
        self.head = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)

    def forward(self, input_ids):
        hidden = self.embeddings(input_ids)
        for block in self.blocks:
            hidden = block(hidden)
        return self.head(self.ln_out(hidden))

    @torch.no_grad()
    def init_random(self, c, g):
        for name, p in self.named_parameters():
            if name.endswith('time_decay'):  # per-channel decays spread as in trained RWKV-4
                n = p.numel()
                p.copy_(-5 + 8 * (torch.arange(n, dtype=torch.float32) / max(n - 1, 1)) ** 0.7)
            elif name.endswith('time_first'):
                p.copy_(math.log(0.3) + 0.5 * torch.rand(p.shape, generator=g) - 0.25)
            elif '.time_mix_' in name:
                p.copy_(torch.rand(p.shape, generator=g))
            elif 'ln' in name.split('.')[-2]:
                p.fill_(1.0 if name.endswith('weight') else 0.0)
            else:
                p.normal_(0, 0.02, generator=g)


# ---------------------------------------------------------------- GPT-NeoX (transformers GPTNeoXForCausalLM)

class GPTNeoXRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings, base):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        t = torch.arange(max_position_embeddings, dtype=inv_freq.dtype)
        freqs = torch.einsum('i,j->ij', t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer('cos_cached', emb.cos(), persistent=False)
        self.register_buffer('sin_cached', emb.sin(), persistent=False)

    def forward(self, seq_len):
        return self.cos_cached[:seq_len], self.sin_cached[:seq_len]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    cos = cos[position_ids].unsqueeze(1)
    sin = sin[position_ids].unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


class GPTNeoXAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_attention_heads = c['num_attention_heads']
        self.hidden_size = c['hidden_size']
        self.head_size = self.hidden_size // self.num_attention_heads
        self.rotary_ndims = int(self.head_size * c['rotary_pct'])
        max_positions = c['max_position_embeddings']
        self.register_buffer('bias', torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool))
                             .view(1, 1, max_positions, max_positions), persistent=False)
        self.rotary_emb = GPTNeoXRotaryEmbedding(self.rotary_ndims, max_positions, c['rotary_emb_base'])
        self.norm_factor = self.head_size ** -0.5
        self.query_key_value = nn.Linear(self.hidden_size, 3 * self.hidden_size)
        self.dense = nn.Linear(self.hidden_size, self.hidden_size)

    def forward(self, hidden_states, position_ids):
        qkv = self.query_key_value(hidden_states)
        qkv = qkv.view(qkv.size()[:-1] + (self.num_attention_heads, 3 * self.head_size))
        query = qkv[..., : self.head_size].permute(0, 2, 1, 3)
        key = qkv[..., self.head_size: 2 * self.head_size].permute(0, 2, 1, 3)
        value = qkv[..., 2 * self.head_size:].permute(0, 2, 1, 3)
        query_rot, query_pass = query[..., : self.rotary_ndims], query[..., self.rotary_ndims:]
        key_rot, key_pass = key[..., : self.rotary_ndims], key[..., self.rotary_ndims:]
        cos, sin = self.rotary_emb(key.shape[-2])
        query, key = apply_rotary_pos_emb(query_rot, key_rot, cos, sin, position_ids)
        query = torch.cat((query, query_pass), dim=-1)
        key = torch.cat((key, key_pass), dim=-1)
        attn_output = self._attn(query, key, value)
        # _merge_heads
        attn_output = attn_output.permute(0, 2, 1, 3).contiguous()
        attn_output = attn_output.view(attn_output.size(0), attn_output.size(1), self.hidden_size)
        return self.dense(attn_output)

    def _attn(self, query, key, value):
        batch_size, num_heads, query_length, head_size = query.size()
        key_length = key.size(-2)
        causal_mask = self.bias[:, :, key_length - query_length: key_length, :key_length]
        query = query.reshape(batch_size * num_heads, query_length, head_size)
        key = key.reshape(batch_size * num_heads, key_length, head_size)
        attn_scores = torch.zeros(batch_size * num_heads, query_length, key_length, dtype=query.dtype)
        attn_scores = torch.baddbmm(attn_scores, query, key.transpose(1, 2), beta=1.0, alpha=self.norm_factor)
        attn_scores = attn_scores.view(batch_size, num_heads, query_length, key_length)
        mask_value = torch.tensor(torch.finfo(attn_scores.dtype).min, dtype=attn_scores.dtype)
        attn_scores = torch.where(causal_mask, attn_scores, mask_value)
        attn_weights = F.softmax(attn_scores, dim=-1)
        return torch.matmul(attn_weights, value)


class GPTNeoXMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(c['hidden_size'], c['intermediate_size'])
        self.dense_4h_to_h = nn.Linear(c['intermediate_size'], c['hidden_size'])

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))  # hidden_act 'gelu': erf


class GPTNeoXLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.use_parallel_residual = c['use_parallel_residual']
        self.input_layernorm = nn.LayerNorm(c['hidden_size'], eps=c['layer_norm_eps'])
        self.post_attention_layernorm = nn.LayerNorm(c['hidden_size'], eps=c['layer_norm_eps'])
        self.attention = GPTNeoXAttention(c)
        self.mlp = GPTNeoXMLP(c)

    def forward(self, hidden_states, position_ids):
        attn_output = self.attention(self.input_layernorm(hidden_states), position_ids)
        if self.use_parallel_residual:
            mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
            return mlp_output + attn_output + hidden_states
        attn_output = attn_output + hidden_states
        return self.mlp(self.post_attention_layernorm(attn_output)) + attn_output


class GPTNeoXForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_in = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([GPTNeoXLayer(c) for _ in range(c['num_hidden_layers'])])
        self.final_layer_norm = nn.LayerNorm(c['hidden_size'], eps=c['layer_norm_eps'])
        self.embed_out = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)

    def forward(self, input_ids):
        seq_length = input_ids.shape[1]
        position_ids = torch.arange(seq_length, dtype=torch.long).unsqueeze(0)
        hidden_states = self.embed_in(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, position_ids)
        return self.embed_out(self.final_layer_norm(hidden_states))

    @torch.no_grad()
    def init_random(self, c, g):
        for name, p in self.named_parameters():
            if 'layernorm' in name or 'layer_norm' in name:
                p.fill_(1.0 if name.endswith('weight') else 0.0)
            elif name.endswith('bias'):
                p.zero_()
            else:
                p.normal_(0, 0.02, generator=g)


# ---------------------------------------------------------------- LoRA injection, step, timing

def inject_lora(model, targets, r, alpha, dropout):
    """PEFT's matching for a list of targets: a Linear whose full name ends with '.<target>'."""
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.Linear) and any(n == t or n.endswith('.' + t) for t in targets)]
    for name in names:
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoraLinear(getattr(parent, child), r, alpha, dropout))
    return names


def blas_info():
    libs = set()
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                path = line.split()[-1]
                if 'blas' in os.path.basename(path) or 'mkl' in os.path.basename(path):
                    libs.add(path)
    except OSError:
        pass
    config = None
    for path in sorted(libs):
        if 'openblas' in os.path.basename(path):
            try:
                import ctypes
                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                config = '%s (%s, %d threads)' % (lib.openblas_get_config().decode(), path,
                                                  lib.openblas_get_num_threads())
            except (OSError, AttributeError):
                pass
    if config:
        return config
    if libs:
        return ', '.join(sorted(libs))
    for line in torch.__config__.show().splitlines():
        if 'BLAS_INFO' in line:
            return line.strip()
    return 'unknown'


def main():
    c = SHAPES[args.model]
    targets = [t for t in args.targets.split(',') if t] or DITTY_TARGETS[c['model_type']]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = RwkvForCausalLM(c) if c['model_type'] == 'rwkv' else GPTNeoXForCausalLM(c)
    model.init_random(c, g)
    model.requires_grad_(False)  # frozen float32 base
    wrapped = inject_lora(model, targets, args.lora_r, 2 * args.lora_r, 0.05)  # alpha 16 at r 8
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    n = args.batch_size * args.block_size
    input_ids = torch.randint(0, c['vocab_size'], (args.batch_size, args.block_size), generator=g)
    labels = torch.randint(0, c['vocab_size'], (args.batch_size, args.block_size), generator=g)

    def step():
        logits = model(input_ids)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    step()  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    loss = float('nan')
    for _ in range(args.steps):
        loss = step()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started  # all threads; far below threads x wall on a busy machine
    tokens_per_s = args.steps * n / seconds
    blas = blas_info()
    print('torch %s %s: %d threads, %d LoRA linears (%s), %d trainable, %.1f tokens/s, %.2f s per step of %d x %d, '
          '%.2f CPU s per step, loss %.3f; BLAS %s' % (torch.__version__, args.model, args.threads, len(wrapped), ','.join(targets),
                                  sum(p.numel() for p in trainable), tokens_per_s, seconds / args.steps,
                                  args.batch_size, args.block_size, cpu_seconds / args.steps, loss, blas), file=sys.stderr)
    if args.json:
        print(json.dumps({'model': args.model, 'threads': args.threads, 'tokens_per_s': tokens_per_s,
                          'step_seconds': seconds / args.steps,
                          'cpu_seconds_per_step': cpu_seconds / args.steps, 'torch': torch.__version__, 'blas': blas,
                          'lora_targets': targets, 'lora_linears': len(wrapped), 'loss': loss}))
    else:
        print('%.1f tokens/s' % tokens_per_s)


if __name__ == '__main__':
    main()
