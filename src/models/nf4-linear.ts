/**
 * A frozen 4-bit linear layer: the weight stays packed as NF4 (bitsandbytes layout) and is
 * dequantized only for the duration of one matrix product, in the forward and again in the backward.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LinearLayer } from './types.js';
import { dequantizeNf4Into, quantizeNf4, type Nf4State } from '../quant/nf4.js';
import { matMul } from '../engine/matmul.js';
import { timed } from '../engine/timers.js';

export interface Nf4LinearOptions {
  /** Values per absmax block (default 64). */
  readonly blocksize?: number;
  /** Quantize the absmax values to 8 bits (default true). */
  readonly doubleQuant?: boolean;
}

/**
 * One float32 buffer shared by every Nf4Linear: a weight is dequantized into it, copied (wasm,
 * tensorflow) or referenced (cpu) by a tensor that is disposed before the op returns, so its contents
 * are never used across calls. It grows to the largest quantized weight.
 */
let scratch = new Float32Array(0);

export class Nf4Linear implements LinearLayer {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;
  private readonly op: (x: tf.Tensor2D) => tf.Tensor2D;

  constructor(readonly path: string, readonly state: Nf4State, readonly bias?: tf.Tensor1D) {
    if (state.shape.length !== 2) throw new Error(`${path}: an NF4 linear needs a 2-D weight, got shape [${state.shape.join(', ')}]`);
    [this.outFeatures, this.inFeatures] = state.shape as [number, number];
    this.hasBias = bias !== undefined;
    if (bias && (bias.rank !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new Error(`${path}: bias [${bias.shape.join(', ')}] does not match weight [${state.shape.join(', ')}]`);
    }
    this.op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const x = args[0] as tf.Tensor2D;
      const w = this.dequantized();
      const xw = matMul(x, w, false, true) as tf.Tensor2D;
      w.dispose();
      return {
        value: this.bias ? tf.add<tf.Tensor2D>(xw, this.bias) : xw,
        // dX = dY · W; the weight and the bias are frozen, so x need not be saved.
        gradFunc: (dy: tf.Tensor2D) => this.inputGradient(dy),
      };
    });
  }

  /** Quantizes a float32 weight [out, in] (row-major, as Hugging Face stores it). */
  static fromDense(
    path: string, weight: Float32Array, shape: readonly [number, number], bias?: Float32Array, options: Nf4LinearOptions = {},
  ): Nf4Linear {
    const state = quantizeNf4(weight, { shape, blocksize: options.blocksize, doubleQuant: options.doubleQuant });
    return Nf4Linear.fromState(path, state, bias);
  }

  /** Wraps an existing NF4 state (e.g. read from a bitsandbytes 4-bit checkpoint). */
  static fromState(path: string, state: Nf4State, bias?: Float32Array | tf.Tensor1D): Nf4Linear {
    return new Nf4Linear(path, state, bias instanceof Float32Array ? tf.tensor1d(bias) : bias);
  }

  apply(x: tf.Tensor): tf.Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) throw new Error(`${this.path}: input [${x.shape.join(', ')}] does not end in ${this.inFeatures}`);
    const lead = x.shape.slice(0, -1);
    return tf.tidy(() => tf.reshape(this.op(tf.reshape(x, [-1, this.inFeatures])), [...lead, this.outFeatures]));
  }

  /** Bytes this layer keeps: packed codes, block statistics (with the nested map) and the bias. */
  bytesHeld(): number {
    const { packed, absmax, doubleQuant: dq } = this.state;
    const stats = dq === undefined
      ? (absmax?.byteLength ?? 0)
      : dq.absmaxQ.byteLength + dq.nestedAbsmax.byteLength + dq.nestedMap.byteLength + 4;
    return packed.byteLength + stats + (this.bias ? 4 * this.outFeatures : 0);
  }

  dispose(): void {
    this.bias?.dispose();
  }

  /** dX = dY · W, dequantizing W again for the product only. */
  inputGradient(dy: tf.Tensor2D): tf.Tensor2D {
    const w = this.dequantized();
    const dx = matMul(dy, w) as tf.Tensor2D;
    w.dispose();
    return dx;
  }

  /** The float32 weight [out, in] as a fresh tensor; the caller disposes it before returning. */
  private dequantized(): tf.Tensor2D {
    const n = this.state.n;
    if (scratch.length < n) scratch = new Float32Array(n);
    const view = scratch.subarray(0, n);
    return timed('dequant', () => {
      dequantizeNf4Into(this.state, view);
      return tf.tensor2d(view, [this.outFeatures, this.inFeatures]);
    });
  }
}
