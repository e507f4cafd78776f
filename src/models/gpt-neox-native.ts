/**
 * GPT-NeoX on the native engine: the same layer as src/models/gpt-neox.ts, as kernel calls with a
 * hand-written backward. Forward (N = B*T rows, heads merged as the dense projection sees them):
 *   h1 = LN(x; input_layernorm);  qkv = query_key_value(h1);  q, k, v = split + rotary(qkv)
 *   ctx = causal attention(q, k, v);  att = dense(ctx)
 *   parallel:   h2 = LN(x; post_attention_layernorm);        out = x + att + mlp(h2)
 *   sequential: y = x + att;  h2 = LN(y; post_attention_layernorm);  out = y + mlp(h2)
 *   mlp(h) = dense_4h_to_h(act(m)), m = dense_h_to_4h(h)
 * Selective checkpointing keeps the products' outputs (qkv, att, m), the attention output ctx and
 * its row log-sum-exp; the rest is recomputed.
 */
import { GELU_KIND } from '../engine/native/addon.js';
import type { Buf, NativeDevice } from '../engine/native/device.js';
import type { NativeLinear } from '../engine/native/linear.js';
import { InputError } from '../io/errors.js';
import type { GptNeoXConfig } from './config.js';
import { need, NativeProgramBase, type NativeBlockProgram, type PassContext, type Saved } from './native-program.js';

const ELEMENTWISE = ['h1', 'q', 'k', 'v', 'y', 'h2', 'g'];

/** transformers' GPT-NeoX activations as the native GELU kernel's kinds. */
function geluKind(config: GptNeoXConfig): number {
  switch (config.hidden_act) {
    case 'gelu':
    case 'gelu_python':
      return GELU_KIND.erf;
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return GELU_KIND.tanh;
    case 'gelu_fast':
      return GELU_KIND.fast;
    default:
      throw new InputError(`${config.file}: hidden_act "${config.hidden_act}" is not supported by the native engine; use backend wasm`);
  }
}

export class GptNeoXNativeProgram extends NativeProgramBase implements NativeBlockProgram {
  readonly numLayers: number;
  protected readonly elementwise = ELEMENTWISE;
  private readonly heads: number;
  private readonly headSize: number;
  private readonly rotaryDims: number;
  private readonly I: number;
  private readonly gelu: number;

  constructor(device: NativeDevice, private readonly config: GptNeoXConfig, params: ReadonlyMap<string, Buf>, linears: ReadonlyMap<string, NativeLinear>) {
    super(device, config.hidden_size, config.layer_norm_eps, params, linears);
    this.numLayers = config.num_hidden_layers;
    this.heads = config.num_attention_heads;
    this.headSize = config.hidden_size / config.num_attention_heads;
    this.rotaryDims = Math.floor(this.headSize * config.rotary_pct);
    this.I = config.intermediate_size;
    this.gelu = geluKind(config);
  }

  materialize(i: number, x: Buf, s: Saved, ctx: PassContext, output: boolean): Buf | undefined {
    const a = this.device.addon;
    const { B, T } = ctx;
    const N = B * T, C = this.hiddenSize, H = this.heads, d = this.headSize;
    const l = `gpt_neox.layers.${i}`;
    const get = (name: string, make: () => Buf): Buf => NativeProgramBase.get(s, name, make);
    const h1 = get('h1', () => this.norm(x, `${l}.input_layernorm`, s, 'ln1', N));
    const qkv = this.product(s, 'qkv', `${l}.attention.query_key_value`, h1, N, 3 * C, ctx);
    const offset = ctx.decode?.offset ?? 0;
    if (!s.has('q') || !s.has('k') || !s.has('v')) {
      for (const n of ['q', 'k', 'v']) this.device.release(s.get(n));
      const q = this.device.act(N * C), k = this.device.act(N * C), v = this.device.act(N * C);
      a.qkvRotaryForward(qkv.id, B, T, H, d, this.rotaryDims, this.config.rotary_emb_base, offset, q.id, k.id, v.id);
      s.set('q', q).set('k', k).set('v', v);
    }
    if (!s.has('ctx')) {
      const out = this.device.act(N * C), lse = this.device.f32(B * H * T);
      const cache = ctx.decode?.layer(i);
      if (cache) {
        // keys and values [B, H, offset + T, d]: the cache followed by this call's
        const S = offset + T;
        const grow = (name: 'k' | 'v'): Buf => {
          const old = cache.get(name), fresh = need(s, name), all = this.device.act(B * H * S * d);
          for (let bh = 0; bh < B * H; bh++) {
            if (old && offset > 0) a.copy(all.id, bh * S * d, old.id, bh * offset * d, offset * d);
            a.copy(all.id, (bh * S + offset) * d, fresh.id, bh * T * d, T * d);
          }
          this.device.free(old);
          cache.set(name, all);
          return all;
        };
        const kc = grow('k'), vc = grow('v');
        a.attentionForward(need(s, 'q').id, kc.id, vc.id, B, H, T, S, d, out.id, lse.id);
      } else {
        a.attentionForward(need(s, 'q').id, need(s, 'k').id, need(s, 'v').id, B, H, T, T, d, out.id, lse.id);
      }
      s.set('ctx', out).set('lse', lse);
    }
    const att = this.product(s, 'att', `${l}.attention.dense`, need(s, 'ctx'), N, C, ctx);
    const parallel = this.config.use_parallel_residual;
    const y = parallel ? x : get('y', () => {
      const out = this.device.act(N * C);
      a.add(x.id, att.id, out.id, N * C);
      return out;
    });
    const h2 = get('h2', () => this.norm(y, `${l}.post_attention_layernorm`, s, 'ln2', N));
    const m = this.product(s, 'm', `${l}.mlp.dense_h_to_4h`, h2, N, this.I, ctx);
    const g = get('g', () => {
      const out = this.device.act(N * this.I);
      a.geluForward(m.id, out.id, N * this.I, this.gelu);
      return out;
    });
    if (!output) return undefined;
    const out = this.device.act(N * C);
    const hDown = this.linear(`${l}.mlp.dense_4h_to_h`).forward(g, N, out, ctx.dropoutSeed(`${l}.mlp.dense_4h_to_h`));
    if (hDown) s.set('down.h', hDown);
    a.addInplace(out.id, y.id, N * C);
    if (parallel) a.addInplace(out.id, att.id, N * C);
    return out;
  }

  /** k, v: the cache, made by the first decoding call */
  initLayerState(): Saved {
    return new Map();
  }

  backward(i: number, x: Buf, s: Saved, dout: Buf, ctx: PassContext, inputGrad: boolean): Buf | undefined {
    const a = this.device.addon;
    const dev = this.device;
    const { B, T } = ctx;
    const N = B * T, C = this.hiddenSize, H = this.heads, d = this.headSize, I = this.I;
    const l = `gpt_neox.layers.${i}`;
    const lnBack = this.normBackward(s, N);
    const parallel = this.config.use_parallel_residual;

    // mlp: dout -> dg -> dm -> dh2
    const down = this.linear(`${l}.mlp.dense_4h_to_h`);
    const g = need(s, 'g');
    const seedDown = ctx.dropoutSeed(down.path);
    // a recomputed block (full checkpointing) did not run the output product: make its adapter's h alone
    const hDown = s.get('down.h') ?? down.adapterInput(g, N, seedDown);
    if (hDown) s.set('down.h', hDown);
    const dg = dev.act(N * I);
    down.backward(g, hDown, dout, N, dg, seedDown);
    const dm = dev.act(N * I);
    a.geluBackward(need(s, 'm').id, dg.id, dm.id, N * I, this.gelu);
    dev.release(dg);
    const dh2 = dev.act(N * C);
    const up = `${l}.mlp.dense_h_to_4h`;
    this.linear(up).backward(need(s, 'h2'), s.get('m.h'), dm, N, dh2, ctx.dropoutSeed(up));
    dev.release(dm);
    // dY: the gradient at the input of the post-attention norm's branch point
    const dy = dev.act(N * C);
    a.copy(dy.id, 0, dout.id, 0, N * C);
    lnBack(dh2, parallel ? x : need(s, 'y'), `${l}.post_attention_layernorm`, 'ln2', dy, true);
    dev.release(dh2);
    // attention: datt = dout (parallel) or dy (sequential)
    const datt = parallel ? dout : dy;
    const dctx = dev.act(N * C);
    const dense = `${l}.attention.dense`;
    this.linear(dense).backward(need(s, 'ctx'), s.get('att.h'), datt, N, dctx, ctx.dropoutSeed(dense));
    const dq = dev.act(N * C), dk = dev.act(N * C), dv = dev.act(N * C);
    a.attentionBackward(dctx.id, need(s, 'q').id, need(s, 'k').id, need(s, 'v').id, need(s, 'ctx').id, need(s, 'lse').id, B, H, T, d, dq.id, dk.id, dv.id);
    dev.release(dctx);
    const dqkv = dev.act(N * 3 * C);
    a.qkvRotaryBackward(dq.id, dk.id, dv.id, B, T, H, d, this.rotaryDims, this.config.rotary_emb_base, 0, dqkv.id);
    dev.release(dq, dk, dv);
    const dh1 = inputGrad ? dev.act(N * C) : undefined;
    const qkvPath = `${l}.attention.query_key_value`;
    this.linear(qkvPath).backward(need(s, 'h1'), s.get('qkv.h'), dqkv, N, dh1, ctx.dropoutSeed(qkvPath));
    dev.release(dqkv);
    if (!dh1) {
      dev.release(dy);
      return undefined;
    }
    // dx = dy (+ dout through the parallel residual's attention branch is already in dy's copy) + LN1'(dh1)
    lnBack(dh1, x, `${l}.input_layernorm`, 'ln1', dy, true);
    dev.release(dh1);
    return dy;
  }
}
