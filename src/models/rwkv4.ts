/**
 * RWKV-4 as transformers' RwkvForCausalLM, in training semantics: no rescale_every (transformers
 * applies it only in eval mode, where in float32 it moves results only at the LayerNorm-eps level).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorSource } from '../io/tensor-source.js';
import { emptyWkvState, wkv, wkvWithState, type WkvState } from '../engine/wkv.js';
import type { RwkvConfig } from './config.js';
import { BlockwiseModel, type WeightStorers } from './model.js';
import { lastPosition, shiftTokens } from './ops.js';
import type { DecodeState } from './types.js';
import type { WeightLoaderOptions } from './weights.js';
import { WEIGHT_NAMES } from './weight-names.js';
import { reluSquared } from '../engine/fused.js';

/** One layer's recurrent state, as transformers' 5 state tensors. */
export interface RwkvLayerState {
  /** ln1 output of the last token [B, C] (attention token shift) */
  readonly attX: tf.Tensor2D;
  /** ln2 output of the last token [B, C] (feed-forward token shift) */
  readonly ffnX: tf.Tensor2D;
  /** aa, bb, pp [B, C_att] */
  readonly wkv: WkvState;
}

const NAMES = WEIGHT_NAMES.rwkv;

function disposeLayerState(s: RwkvLayerState): void {
  tf.dispose([s.attX, s.ffnX, s.wkv.aa, s.wkv.bb, s.wkv.pp]);
}

/** Recurrent decoding state; `step` updates it in place. */
export class RwkvState implements DecodeState {
  constructor(readonly batch: number, public position: number, public layers: RwkvLayerState[]) {}

  /** Replace the layer states (disposing the old ones) after consuming `tokens` more tokens. */
  advance(layers: RwkvLayerState[], tokens: number): void {
    this.layers.forEach(disposeLayerState);
    this.layers = layers;
    this.position += tokens;
  }

  dispose(): void {
    this.layers.forEach(disposeLayerState);
    this.layers = [];
  }
}

interface AttentionInputs {
  readonly w: tf.Tensor1D;
  readonly u: tf.Tensor1D;
  readonly k: tf.Tensor3D;
  readonly v: tf.Tensor3D;
  /** sigmoid(receptance) */
  readonly r: tf.Tensor3D;
}

export class RwkvModel extends BlockwiseModel {
  readonly architecture = 'rwkv' as const;
  private readonly attentionSize: number;

  private constructor(readonly config: RwkvConfig) {
    super({
      vocabSize: config.vocab_size, hiddenSize: config.hidden_size, numLayers: config.num_hidden_layers,
      layerNormEps: config.layer_norm_epsilon,
    });
    this.attentionSize = config.attention_hidden_size;
  }

  /** Read the weights (HF names) from `source`, checking every shape against `config`. */
  static load(config: RwkvConfig, source: TensorSource, options: WeightLoaderOptions = {}): RwkvModel {
    const model = new RwkvModel(config);
    model.loadFrom(source, options, []);
    return model;
  }

  protected loadWeights(store: WeightStorers): void {
    declareRwkvWeights(this.config, store);
  }

  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => tf.gather(this.param(NAMES.embedding), tf.cast(ids, 'int32')) as tf.Tensor3D);
  }

  block(index: number, x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const b = `rwkv.blocks.${index}`;
      let h = index === 0 ? this.norm(x, `${b}.pre_ln`) : x;
      const z = this.norm(h, `${b}.ln1`);
      const a = this.attentionInputs(index, z, shiftTokens(z));
      h = tf.add(h, this.attentionOutput(index, a.r, wkv(a.w, a.u, a.k, a.v)));
      const z2 = this.norm(h, `${b}.ln2`);
      return tf.add(h, this.feedForward(index, z2, shiftTokens(z2)));
    });
  }

  finalNorm(x: tf.Tensor3D): tf.Tensor3D {
    return this.norm(x, NAMES.finalNorm);
  }

  logits(hidden: tf.Tensor): tf.Tensor {
    return this.linear(NAMES.head, hidden);
  }

  initState(batch: number): RwkvState {
    const layers = Array.from({ length: this.numLayers }, () => ({
      attX: tf.zeros([batch, this.hiddenSize]) as tf.Tensor2D,
      ffnX: tf.zeros([batch, this.hiddenSize]) as tf.Tensor2D,
      wkv: emptyWkvState(batch, this.attentionSize),
    }));
    return new RwkvState(batch, 0, layers);
  }

  /** Feed ids [B, T] after the state's tokens; the state is updated in place and returned. */
  step(ids: tf.Tensor2D, state: DecodeState): { logits: tf.Tensor2D; state: RwkvState } {
    if (!(state instanceof RwkvState) || state.batch !== ids.shape[0]) {
      throw new Error(`RwkvModel.step: expected an RwkvState for batch ${ids.shape[0]} from this model's initState`);
    }
    const layers: RwkvLayerState[] = [];
    const logits = tf.tidy(() => {
      let x = this.embed(ids);
      for (let i = 0; i < this.numLayers; i++) {
        const out = this.blockStep(i, x, state.layers[i]!);
        x = out.x;
        layers.push(out.state);
      }
      return this.logits(lastPosition(this.finalNorm(x))) as tf.Tensor2D;
    });
    state.advance(layers, ids.shape[1]);
    return { logits, state };
  }

  /** `block` continuing from a recurrent state; the returned state's tensors are kept out of the caller's tidy. */
  private blockStep(index: number, x: tf.Tensor3D, st: RwkvLayerState): { x: tf.Tensor3D; state: RwkvLayerState } {
    const b = `rwkv.blocks.${index}`;
    let h = index === 0 ? this.norm(x, `${b}.pre_ln`) : x;
    const z = this.norm(h, `${b}.ln1`);
    const a = this.attentionInputs(index, z, shiftTokens(z, st.attX));
    const { y, state: wkvState } = wkvWithState(a.w, a.u, a.k, a.v, st.wkv);
    h = tf.add(h, this.attentionOutput(index, a.r, y));
    const z2 = this.norm(h, `${b}.ln2`);
    h = tf.add(h, this.feedForward(index, z2, shiftTokens(z2, st.ffnX)));
    const state: RwkvLayerState = {
      attX: tf.keep(lastPosition(z)),
      ffnX: tf.keep(lastPosition(z2)),
      wkv: { aa: tf.keep(wkvState.aa), bb: tf.keep(wkvState.bb), pp: tf.keep(wkvState.pp) },
    };
    return { x: h, state };
  }

  private attentionInputs(index: number, z: tf.Tensor3D, shifted: tf.Tensor3D): AttentionInputs {
    const a = `rwkv.blocks.${index}.attention`;
    const mixed = (m: string): tf.Tensor3D => mix(z, shifted, this.param(`${a}.time_mix_${m}`));
    return {
      w: tf.neg(tf.exp(this.param(`${a}.time_decay`))) as tf.Tensor1D,
      u: this.param(`${a}.time_first`) as tf.Tensor1D,
      k: this.linear(`${a}.key`, mixed('key')) as tf.Tensor3D,
      v: this.linear(`${a}.value`, mixed('value')) as tf.Tensor3D,
      r: tf.sigmoid(this.linear(`${a}.receptance`, mixed('receptance'))) as tf.Tensor3D,
    };
  }

  private attentionOutput(index: number, r: tf.Tensor3D, y: tf.Tensor3D): tf.Tensor3D {
    return this.linear(`rwkv.blocks.${index}.attention.output`, tf.mul(r, y)) as tf.Tensor3D;
  }

  /** ChannelMix: sigmoid(Wr xr) * Wv relu(Wk xk)^2 */
  private feedForward(index: number, z: tf.Tensor3D, shifted: tf.Tensor3D): tf.Tensor3D {
    const f = `rwkv.blocks.${index}.feed_forward`;
    const k = reluSquared(this.linear(`${f}.key`, mix(z, shifted, this.param(`${f}.time_mix_key`))));
    const r = tf.sigmoid(this.linear(`${f}.receptance`, mix(z, shifted, this.param(`${f}.time_mix_receptance`))));
    return tf.mul(r, this.linear(`${f}.value`, k)) as tf.Tensor3D;
  }
}

/** Every RWKV-4 weight (HF names) with the shape `config` implies, in checkpoint order. */
export function declareRwkvWeights(config: RwkvConfig, { param, linear: linearWithBias, norm, head }: WeightStorers): void {
  const { vocab_size: V, hidden_size: C, attention_hidden_size: A, intermediate_size: F } = config;
  const linear = (path: string, out: number, inp: number): void => linearWithBias(path, out, inp, false);
  param(NAMES.embedding, [V, C]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const b = `rwkv.blocks.${i}`;
    if (i === 0) norm(`${b}.pre_ln`);
    norm(`${b}.ln1`);
    norm(`${b}.ln2`);
    param(`${b}.attention.time_decay`, [A]);
    param(`${b}.attention.time_first`, [A]);
    for (const m of ['key', 'value', 'receptance']) param(`${b}.attention.time_mix_${m}`, [1, 1, C]);
    for (const m of ['key', 'value', 'receptance']) linear(`${b}.attention.${m}`, A, C);
    linear(`${b}.attention.output`, C, A);
    for (const m of ['key', 'receptance']) param(`${b}.feed_forward.time_mix_${m}`, [1, 1, C]);
    linear(`${b}.feed_forward.key`, F, C);
    linear(`${b}.feed_forward.receptance`, C, C);
    linear(`${b}.feed_forward.value`, C, F);
  }
  norm(NAMES.finalNorm);
  head(NAMES.head, NAMES.embedding, config.tie_word_embeddings);
}

/** Token-shift mix: z * m + shifted * (1 - m) */
function mix(z: tf.Tensor3D, shifted: tf.Tensor3D, m: tf.Tensor): tf.Tensor3D {
  return tf.add(tf.mul(z, m), tf.mul(shifted, tf.sub(1, m))) as tf.Tensor3D;
}
