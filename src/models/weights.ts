import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import { DenseLinear } from './linear.js';

const FLOAT_DTYPES = new Set(['F16', 'BF16', 'F32', 'F64']);

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Reads model weights one tensor at a time as float32 tensors, checking names and shapes against
 * what the config implies, and remembers what it read so the rest can be reported.
 */
export class WeightLoader {
  private readonly used = new Set<string>();
  private readonly loaded: tf.Tensor[] = [];

  constructor(readonly source: TensorSource) {}

  /** The tensor `name`, which must exist with exactly `shape`. */
  tensor(name: string, shape: readonly number[]): tf.Tensor {
    const where = this.source.location;
    if (!this.source.has(name)) throw new InputError(`${where}: missing tensor "${name}" (expected shape ${shapeText(shape)})`);
    const info = this.source.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(`${where}: tensor "${name}" has shape ${shapeText(info.shape)}, expected ${shapeText(shape)} from the model config`);
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new InputError(`${where}: tensor "${name}" is ${info.dtype}; expected a float weight (F16, BF16, F32 or F64)`);
    }
    const t = tf.keep(tf.tensor(this.source.readFloat32(name), [...shape], 'float32'));
    this.used.add(name);
    this.loaded.push(t);
    return t;
  }

  /** A linear layer from `${path}.weight` [out, in] and, if `bias`, `${path}.bias` [out]. */
  linear(path: string, outFeatures: number, inFeatures: number, bias: boolean): DenseLinear {
    const w = this.tensor(`${path}.weight`, [outFeatures, inFeatures]) as tf.Tensor2D;
    const b = bias ? (this.tensor(`${path}.bias`, [outFeatures]) as tf.Tensor1D) : undefined;
    return new DenseLinear(path, w, b);
  }

  /** A bias-free linear layer at `path` whose weight is the tensor `name` (tied embeddings). */
  linearFrom(path: string, name: string, outFeatures: number, inFeatures: number): DenseLinear {
    return new DenseLinear(path, this.tensor(name, [outFeatures, inFeatures]) as tf.Tensor2D);
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
}
