import * as tf from '@tensorflow/tfjs-core';
import type { TensorSource } from '../io/tensor-source.js';
import { layerNorm } from './ops.js';
import type { Architecture, CausalLM, DecodeState, LinearLayer } from './types.js';
import { WeightLoader, type WeightLoaderOptions } from './weights.js';

/**
 * A CausalLM whose forward pass is split into embed -> block(0..numLayers-1) -> finalNorm -> logits,
 * so a trainer can run (and recompute) it block by block. hidden(ids) equals
 * finalNorm(block(n-1, ... block(0, embed(ids)))).
 */
export interface BlockwiseCausalLM extends CausalLM {
  /** messages about the checkpoint that did not stop loading (unexpected tensors, ...) */
  readonly warnings: readonly string[];
  /** ids int32 [B, T] -> residual stream [B, T, C] */
  embed(ids: tf.Tensor2D): tf.Tensor3D;
  /** one layer, [B, T, C] -> [B, T, C] */
  block(index: number, x: tf.Tensor3D): tf.Tensor3D;
  /** the final norm, [B, T, C] -> [B, T, C] */
  finalNorm(x: tf.Tensor3D): tf.Tensor3D;
}

/** Sizes every model has, and the epsilon of its layer norms. */
export interface ModelDimensions {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly layerNormEps: number;
}

/** What loadWeights stores with: plain tensors, linears, layer norms ([hiddenSize] weight and bias) and the output head. */
export interface WeightStorers {
  param(name: string, shape: number[]): void;
  linear(path: string, out: number, inp: number, bias: boolean): void;
  norm(path: string): void;
  /** the head `path` [vocabSize, hiddenSize], tied to `embedding` when the config says so and the checkpoint has no head */
  head(path: string, embedding: string, tied: boolean): void;
}

/** A layer norm's weight and bias [hidden], stored through `param`. */
export function normStorer(param: WeightStorers['param'], hidden: number): WeightStorers['norm'] {
  return (path) => {
    param(`${path}.weight`, [hidden]);
    param(`${path}.bias`, [hidden]);
  };
}

/**
 * The parts RWKV-4 and GPT-NeoX share: the weight maps, loading with cleanup on failure,
 * hidden/forward from embed/block/finalNorm/logits, dispose, and lookups of params, linears and norms.
 */
export abstract class BlockwiseModel implements BlockwiseCausalLM {
  abstract readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly linears = new Map<string, LinearLayer>();
  readonly otherParams = new Map<string, tf.Tensor>();
  readonly warnings: string[] = [];
  private readonly layerNormEps: number;

  protected constructor(dims: ModelDimensions) {
    this.vocabSize = dims.vocabSize;
    this.hiddenSize = dims.hiddenSize;
    this.numLayers = dims.numLayers;
    this.layerNormEps = dims.layerNormEps;
  }

  abstract embed(ids: tf.Tensor2D): tf.Tensor3D;
  abstract block(index: number, x: tf.Tensor3D): tf.Tensor3D;
  abstract finalNorm(x: tf.Tensor3D): tf.Tensor3D;
  abstract logits(hidden: tf.Tensor): tf.Tensor;
  abstract initState(batch: number): DecodeState;
  abstract step(ids: tf.Tensor2D, state: DecodeState): { logits: tf.Tensor2D; state: DecodeState };

  /** Read every weight (HF names), checking shapes against the config. */
  protected abstract loadWeights(store: WeightStorers): void;

  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      let x = this.embed(ids);
      for (let i = 0; i < this.numLayers; i++) x = this.block(i, x);
      return this.finalNorm(x);
    });
  }

  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => this.logits(this.hidden(ids)) as tf.Tensor3D);
  }

  dispose(): void {
    for (const l of this.linears.values()) l.dispose();
    for (const t of this.otherParams.values()) t.dispose();
    this.linears.clear();
    this.otherParams.clear();
  }

  /**
   * Runs loadWeights on `source`, disposing everything read if it throws; then records the loader's
   * warnings about tensors left unread (except `ignored` ones).
   */
  protected loadFrom(source: TensorSource, options: WeightLoaderOptions, ignored: readonly RegExp[]): void {
    const weights = new WeightLoader(source, options);
    const H = this.hiddenSize;
    const param = (name: string, shape: number[]): void => void this.otherParams.set(name, weights.tensor(name, shape));
    const linear = (path: string, out: number, inp: number, bias: boolean): void => void this.linears.set(path, weights.linear(path, out, inp, bias));
    const store: WeightStorers = {
      param,
      linear,
      norm: normStorer(param, H),
      head: (path, embedding, tied) => {
        if (tied && !weights.source.has(`${path}.weight`)) {
          this.linears.set(path, weights.linearFrom(path, embedding, this.vocabSize, H));
        } else {
          linear(path, this.vocabSize, H, false);
        }
      },
    };
    try {
      this.loadWeights(store);
    } catch (err) {
      weights.disposeAll();
      throw err;
    }
    for (const w of weights.warnings(ignored)) this.warnings.push(w); // no spread: 100k+ warnings would overflow the stack
  }

  protected norm(x: tf.Tensor3D, path: string): tf.Tensor3D {
    return layerNorm(x, this.param(`${path}.weight`), this.param(`${path}.bias`), this.layerNormEps) as tf.Tensor3D;
  }

  protected linear(path: string, x: tf.Tensor): tf.Tensor {
    return this.linears.get(path)!.apply(x);
  }

  protected param(name: string): tf.Tensor {
    const t = this.otherParams.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter "${name}"`);
    return t;
  }
}
