import * as tf from '@tensorflow/tfjs-core';
import { Nf4Linear } from '../models/nf4-linear.js';
import { InputError } from '../io/errors.js';
import { FLOAT_DTYPES } from '../io/dtypes.js';
import type { TensorSource } from '../io/tensor-source.js';
import { readStoredNf4 } from '../quant/bnb-checkpoint.js';
import { dequantizeNf4, quantizeNf4, type Nf4State } from '../quant/nf4.js';
import { DenseLinear } from './linear.js';
import type { LinearLayer } from './types.js';


function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Which linears are held in NF4 while loading, and how float ones are quantized. */
export interface LoadQuantization {
  /** true: NF4 (quantized now from float, or kept as stored); false: float32 (a stored 4-bit weight is dequantized) */
  readonly quantizes: (path: string) => boolean;
  readonly blocksize: number;
  readonly doubleQuant: boolean;
}

export interface WeightLoaderOptions {
  /**
   * Quantize on load. Without it every float linear stays float and every stored 4-bit linear stays
   * NF4, as the checkpoint has them.
   */
  readonly quantization?: LoadQuantization;
}

/**
 * Reads model weights one tensor at a time, checking names and shapes against what the config
 * implies, and remembers what it read so the rest can be reported. Linears become DenseLinear or
 * Nf4Linear; a weight quantized on load is never held as a float tensor.
 */
export class WeightLoader {
  private readonly used = new Set<string>();
  private readonly loaded: tf.Tensor[] = [];
  private dequantized = 0;

  constructor(readonly source: TensorSource, readonly options: WeightLoaderOptions = {}) {}

  /** The tensor `name`, which must exist with exactly `shape`. */
  tensor(name: string, shape: readonly number[]): tf.Tensor {
    return this.keep(tf.tensor(this.values(name, shape), [...shape], 'float32'));
  }

  /** A linear layer from `${path}.weight` [out, in] and, if `bias`, `${path}.bias` [out] (kept float). */
  linear(path: string, outFeatures: number, inFeatures: number, bias: boolean): LinearLayer {
    const b = bias ? (this.tensor(`${path}.bias`, [outFeatures]) as tf.Tensor1D) : undefined;
    const w = this.linearWeight(path, outFeatures, inFeatures, (values, shape, q) => quantizeNf4(values, { shape, blocksize: q.blocksize, doubleQuant: q.doubleQuant }));
    switch (w.kind) {
      case 'nf4': return Nf4Linear.fromState(path, w.state, b);
      case 'quantized': return Nf4Linear.fromState(path, w.quantized, b);
      case 'float': return new DenseLinear(path, this.keep(tf.tensor2d(w.values, [outFeatures, inFeatures])), b);
    }
  }

  /**
   * The weight of the linear at `path` as it is to be held: NF4 (stored 4-bit, or quantized now by
   * `quantize` when the options say so) or float32 values (a stored 4-bit weight dequantized when
   * the options ask for float). Each engine builds its own layer from it.
   */
  linearWeight<Q>(
    path: string, outFeatures: number, inFeatures: number,
    quantize: (values: Float32Array, shape: readonly [number, number], q: LoadQuantization) => Q,
  ): { kind: 'nf4'; state: Nf4State } | { kind: 'quantized'; quantized: Q } | { kind: 'float'; values: Float32Array } {
    const shape = [outFeatures, inFeatures] as const;
    const stored = readStoredNf4(this.source, path, shape);
    const q = this.options.quantization;
    if (stored) {
      for (const name of stored.tensors) this.used.add(name);
      if (q === undefined || q.quantizes(path)) return { kind: 'nf4', state: stored.state };
      this.dequantized++;
      return { kind: 'float', values: dequantizeNf4(stored.state) };
    }
    const values = this.values(`${path}.weight`, shape);
    return q?.quantizes(path) ? { kind: 'quantized', quantized: quantize(values, shape, q) } : { kind: 'float', values };
  }

  /** A bias-free linear layer at `path` whose weight is the tensor `name` (tied embeddings). */
  linearFrom(path: string, name: string, outFeatures: number, inFeatures: number): DenseLinear {
    return new DenseLinear(path, this.tensor(name, [outFeatures, inFeatures]) as tf.Tensor2D);
  }

  /** Notices about the load (dequantized 4-bit weights), then tensors never read except those matching `ignore`. */
  warnings(ignore: readonly RegExp[]): string[] {
    const notices = this.dequantized > 0
      ? [`${this.source.location}: dequantized ${this.dequantized} stored 4-bit linear weight(s) to float32, as asked`]
      : [];
    return [...notices, ...this.unusedWarnings(ignore)];
  }

  /** Warnings for tensors that were never read, except those matching `ignore`. */
  unusedWarnings(ignore: readonly RegExp[]): string[] {
    const extra = this.source.names().filter((n) => !this.used.has(n) && !ignore.some((re) => re.test(n)));
    return extra.map((n) => `${this.source.location}: ignoring unexpected tensor "${n}"`);
  }

  /** Free everything read so far (when loading fails half way). */
  disposeAll(): void {
    for (const t of this.loaded) t.dispose();
  }

  /** The float values of tensor `name`, which must exist with exactly `shape` and a float dtype. */
  values(name: string, shape: readonly number[]): Float32Array {
    const where = this.source.location;
    if (!this.source.has(name)) throw new InputError(`${where}: missing tensor "${name}" (expected shape ${shapeText(shape)})`);
    const info = this.source.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(`${where}: tensor "${name}" has shape ${shapeText(info.shape)}, expected ${shapeText(shape)} from the model config`);
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new InputError(`${where}: tensor "${name}" is ${info.dtype}; expected a float weight (F16, BF16, F32 or F64)`);
    }
    this.used.add(name);
    return this.source.readFloat32(name);
  }

  private keep<T extends tf.Tensor>(t: T): T {
    tf.keep(t);
    this.loaded.push(t);
    return t;
  }
}
