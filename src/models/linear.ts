import * as tf from '@tensorflow/tfjs-core';
import type { LinearLayer } from './types.js';
import { matMul } from '../engine/matmul.js';

/** A plain float32 linear layer: y = x W^T + b with W [out, in] as Hugging Face stores it. */
export class DenseLinear implements LinearLayer {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly hasBias: boolean;

  constructor(readonly path: string, readonly weight: tf.Tensor2D, readonly bias?: tf.Tensor1D) {
    [this.outFeatures, this.inFeatures] = weight.shape;
    this.hasBias = bias !== undefined;
    if (bias && bias.shape[0] !== this.outFeatures) throw new Error(`${path}: bias [${bias.shape}] does not match weight [${weight.shape}]`);
  }

  apply(x: tf.Tensor): tf.Tensor {
    const lead = x.shape.slice(0, -1);
    if (x.shape[x.rank - 1] !== this.inFeatures) throw new Error(`${this.path}: input [${x.shape}] does not end in ${this.inFeatures}`);
    return tf.tidy(() => {
      const y = matMul(tf.reshape(x, [-1, this.inFeatures]), this.weight, false, true);
      return tf.reshape(this.bias ? tf.add(y, this.bias) : y, [...lead, this.outFeatures]);
    });
  }

  inputGradient(dy: tf.Tensor2D): tf.Tensor2D {
    return matMul(dy, this.weight) as tf.Tensor2D;
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}
