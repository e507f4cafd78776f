/** GPT-NeoX as transformers' GPTNeoXForCausalLM (Pythia, Dolly-v2, gpt-neox-20b). */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import type { GptNeoXConfig } from './config.js';
import { BlockwiseModel, type WeightStorers } from './model.js';
import { activation, lastPosition } from './ops.js';
import type { DecodeState } from './types.js';
import type { WeightLoaderOptions } from './weights.js';
import { WEIGHT_NAMES } from './weight-names.js';
import { matMul } from '../engine/matmul.js';
import { causalAttention } from '../engine/fused.js';

/** Buffers old checkpoints carry that are recomputed, not loaded. */
export const IGNORED_BUFFERS = [/\.attention\.bias$/, /\.attention\.masked_bias$/, /\.attention\.rotary_emb\.inv_freq$/];

/** Added to the scores of future positions. */
const MASKED = -1e30;
const NAMES = WEIGHT_NAMES.gpt_neox;

/** One layer's cache: keys (after rotary) and values [B, heads, T_past, d]. */
interface LayerCache {
  readonly k: tf.Tensor4D;
  readonly v: tf.Tensor4D;
}

/** KV cache; `step` updates it in place. */
export class GptNeoXState implements DecodeState {
  constructor(readonly batch: number, public position: number, public layers: LayerCache[]) {}

  advance(layers: LayerCache[], tokens: number): void {
    this.dispose();
    this.layers = layers;
    this.position += tokens;
  }

  dispose(): void {
    for (const l of this.layers) tf.dispose([l.k, l.v]);
    this.layers = [];
  }
}

export class GptNeoXModel extends BlockwiseModel {
  readonly architecture = 'gpt_neox' as const;
  private readonly heads: number;
  private readonly headSize: number;
  /** rotary dimensions per head (the first `rotaryDims` of q and k) */
  private readonly rotaryDims: number;
  /**
   * The rotary tables and causal mask values of the last (offset, T) seen: every layer of a forward
   * pass (and every step of a fixed-length run) asks for the same ones. Plain arrays, so the model
   * holds no tensors beyond its weights; each layer still makes its own (disposable) tensors of them.
   */
  private positional: { offset: number; T: number; cos?: Float32Array; sin?: Float32Array; mask?: Float32Array } | undefined;

  private constructor(readonly config: GptNeoXConfig) {
    super({
      vocabSize: config.vocab_size, hiddenSize: config.hidden_size, numLayers: config.num_hidden_layers,
      layerNormEps: config.layer_norm_eps,
    });
    this.heads = config.num_attention_heads;
    this.headSize = config.hidden_size / config.num_attention_heads;
    this.rotaryDims = Math.floor(this.headSize * config.rotary_pct);
    if (this.rotaryDims % 2 !== 0) {
      throw new InputError(`${config.file}: rotary_pct ${config.rotary_pct} gives ${this.rotaryDims} rotary dimensions per head (head size ${this.headSize}); it must be even`);
    }
  }

  /** Read the weights (HF names) from `source`, checking every shape against `config`. */
  static load(config: GptNeoXConfig, source: TensorSource, options: WeightLoaderOptions = {}): GptNeoXModel {
    const model = new GptNeoXModel(config);
    model.loadFrom(source, options, IGNORED_BUFFERS);
    return model;
  }

  protected loadWeights(store: WeightStorers): void {
    declareGptNeoXWeights(this.config, store);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => tf.gather(this.param(NAMES.embedding), tf.cast(ids, 'int32')) as tf.Tensor3D);
  }

  block(index: number, x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.layer(index, x, 0).x);
  }

  finalNorm(x: tf.Tensor3D): tf.Tensor3D {
    return this.norm(x, NAMES.finalNorm);
  }

  logits(hidden: tf.Tensor): tf.Tensor {
    return this.linear(NAMES.head, hidden);
  }

  initState(batch: number): GptNeoXState {
    return new GptNeoXState(batch, 0, []);
  }

  /** Feed ids [B, T] after the cached tokens; the cache is updated in place and returned. */
  step(ids: tf.Tensor2D, state: DecodeState): { logits: tf.Tensor2D; state: GptNeoXState } {
    if (!(state instanceof GptNeoXState) || state.batch !== ids.shape[0]) {
      throw new Error(`GptNeoXModel.step: expected a GptNeoXState for batch ${ids.shape[0]} from this model's initState`);
    }
    const layers: LayerCache[] = [];
    const logits = tf.tidy(() => {
      let x = this.embed(ids);
      for (let i = 0; i < this.numLayers; i++) {
        const out = this.layer(i, x, state.position, state.layers[i]);
        x = out.x;
        layers.push({ k: tf.keep(out.cache.k), v: tf.keep(out.cache.v) });
      }
      return this.logits(lastPosition(this.finalNorm(x))) as tf.Tensor2D;
    });
    state.advance(layers, ids.shape[1]);
    return { logits, state };
  }

  /** One layer for tokens at positions offset..offset+T-1 after the cached `past`; returns the grown cache. */
  private layer(index: number, x: tf.Tensor3D, offset: number, past?: LayerCache): { x: tf.Tensor3D; cache: LayerCache } {
    const l = `gpt_neox.layers.${index}`;
    const attn = this.attention(index, this.norm(x, `${l}.input_layernorm`), offset, past);
    if (this.config.use_parallel_residual) {
      const mlp = this.mlp(index, this.norm(x, `${l}.post_attention_layernorm`));
      return { x: tf.add(tf.add(x, attn.out), mlp), cache: attn.cache };
    }
    const y = tf.add(x, attn.out) as tf.Tensor3D;
    return { x: tf.add(y, this.mlp(index, this.norm(y, `${l}.post_attention_layernorm`))), cache: attn.cache };
  }

  private attention(index: number, h: tf.Tensor3D, offset: number, past?: LayerCache): { out: tf.Tensor3D; cache: LayerCache } {
    const [B, T] = h.shape;
    const { heads, headSize: d } = this;
    const a = `gpt_neox.layers.${index}.attention`;
    // [B, T, 3H] viewed [B, T, heads, 3d]: per head q | k | v; then [B, heads, T, d]
    const qkv: tf.Tensor4D = tf.reshape(this.linear(`${a}.query_key_value`, h), [B, T, heads, 3 * d]);
    const part = (j: number): tf.Tensor4D => tf.transpose(tf.slice(qkv, [0, 0, 0, j * d], [B, T, heads, d]), [0, 2, 1, 3]);
    const rotary = this.rotaryTables(offset, T);
    const q = this.rotate(part(0), rotary);
    let k = this.rotate(part(1), rotary);
    let v = part(2);
    if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }
    let context: tf.Tensor; // [B, heads, T, d]
    if (past) {
      let scores = tf.mul(matMul(q, k, false, true), 1 / Math.sqrt(d));
      if (T > 1) scores = tf.add(scores, this.causalMask(offset, T));
      context = matMul(tf.softmax(scores), v);
    } else {
      context = causalAttention(q, k as tf.Tensor4D, v as tf.Tensor4D, this.causalMask(0, T));
    }
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B, T, heads * d]);
    return { out: this.linear(`${a}.dense`, merged) as tf.Tensor3D, cache: { k, v } };
  }

  private mlp(index: number, h: tf.Tensor3D): tf.Tensor3D {
    const m = `gpt_neox.layers.${index}.mlp`;
    return this.linear(`${m}.dense_4h_to_h`, activation(this.config.hidden_act, this.linear(`${m}.dense_h_to_4h`, h))) as tf.Tensor3D;
  }

  /** The cached values for positions offset..offset+T-1 (each part made on first use). */
  private positionalValues(offset: number, T: number): NonNullable<GptNeoXModel['positional']> {
    const p = this.positional;
    if (p && p.offset === offset && p.T === T) return p;
    return (this.positional = { offset, T });
  }

  /** [T, offset + T]: 0 where query t may see key j (j <= offset + t), MASKED elsewhere. */
  private causalMask(offset: number, T: number): tf.Tensor2D {
    const p = this.positionalValues(offset, T);
    const S = offset + T;
    if (!p.mask) {
      p.mask = new Float32Array(T * S);
      for (let t = 0; t < T; t++) p.mask.fill(MASKED, t * S + offset + t + 1, (t + 1) * S);
    }
    return tf.tensor2d(p.mask, [T, S]);
  }

  /** cos and sin [T, R] of positions offset.. for the half-split rotary: angle(t, m) = t base^(-2m/R), repeated twice. */
  private rotaryTables(offset: number, T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } | undefined {
    const R = this.rotaryDims;
    if (R === 0) return undefined;
    const p = this.positionalValues(offset, T);
    if (!p.cos || !p.sin) {
      const half = R / 2;
      const cos = new Float32Array(T * R), sin = new Float32Array(T * R);
      for (let t = 0; t < T; t++) {
        for (let m = 0; m < half; m++) {
          const angle = (offset + t) * this.config.rotary_emb_base ** (-2 * m / R);
          cos[t * R + m] = cos[t * R + m + half] = Math.cos(angle);
          sin[t * R + m] = sin[t * R + m + half] = Math.sin(angle);
        }
      }
      p.cos = cos;
      p.sin = sin;
    }
    return { cos: tf.tensor2d(p.cos, [T, R]), sin: tf.tensor2d(p.sin, [T, R]) };
  }

  /** x' = x cos + rotate_half(x) sin on the first R dims of x [B, heads, T, d]; rotate_half(x) = [-x2, x1]. */
  private rotate(x: tf.Tensor4D, tables: { cos: tf.Tensor2D; sin: tf.Tensor2D } | undefined): tf.Tensor4D {
    if (!tables) return x;
    const R = this.rotaryDims, d = this.headSize;
    const [B, heads, T] = x.shape;
    const xr = tf.slice(x, [0, 0, 0, 0], [B, heads, T, R]);
    const x1 = tf.slice(xr, [0, 0, 0, 0], [B, heads, T, R / 2]);
    const x2 = tf.slice(xr, [0, 0, 0, R / 2], [B, heads, T, R / 2]);
    const rotated = tf.add(tf.mul(xr, tables.cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), tables.sin)) as tf.Tensor4D;
    return R === d ? rotated : tf.concat([rotated, tf.slice(x, [0, 0, 0, R], [B, heads, T, d - R])], 3);
  }
}

/** Every GPT-NeoX weight (HF names) with the shape `config` implies, in checkpoint order. */
export function declareGptNeoXWeights(config: GptNeoXConfig, { param, linear, norm, head }: WeightStorers): void {
  const { vocab_size: V, hidden_size: H, intermediate_size: I, attention_bias: attnBias } = config;
  param(NAMES.embedding, [V, H]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const l = `gpt_neox.layers.${i}`;
    norm(`${l}.input_layernorm`);
    norm(`${l}.post_attention_layernorm`);
    linear(`${l}.attention.query_key_value`, 3 * H, H, attnBias);
    linear(`${l}.attention.dense`, H, H, attnBias);
    linear(`${l}.mlp.dense_h_to_4h`, I, H, true);
    linear(`${l}.mlp.dense_4h_to_h`, H, I, true);
  }
  norm(NAMES.finalNorm);
  head(NAMES.head, NAMES.embedding, config.tie_word_embeddings);
}
