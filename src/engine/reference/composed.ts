/**
 * The fused ops of src/engine/fused.ts and the fused LoRA op of src/lora/lora-linear.ts written as
 * plain tfjs ops, differentiated by tfjs autograd: the definitions each fused op (hand-written
 * gradient, recomputation in backward) is held to. Slow and memory-hungry on purpose; for tests.
 */
import * as tf from '@tensorflow/tfjs-core';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** 0.5 x (1 + erf(x / sqrt 2)) */
export const geluErfComposed = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

/** transformers' gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
export const geluNewComposed = (x: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), SQRT_2_OVER_PI)), 1));

/** transformers' gelu_fast: 0.5 x (1 + tanh(0.7978845608 x (1 + 0.044715 x^2))) */
export const geluFastComposed = (x: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.mul(x, 0.7978845608), tf.add(tf.mul(tf.square(x), 0.044715), 1))), 1));

export const reluSquaredComposed = (x: tf.Tensor): tf.Tensor => tf.square(tf.relu(x));

/** torch.nn.LayerNorm over the last axis: biased variance, eps inside the square root. */
export function layerNormComposed(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight), bias);
}

/** softmax(q k^T / sqrt(d) + mask) v over [..., T, d], `mask` additive [T, S]. */
export function attentionComposed(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const d = q.shape[q.rank - 1]!;
  return tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), mask)), v);
}

/**
 * The LoRA update (dropout(x) A^T B^T) * scaling of x [rows, in], A [r, in], B [out, r]; `mask`
 * [rows * in] is the inverted-dropout mask (0 or 1 / (1 - p); random/rng.ts dropoutMask), absent
 * without dropout.
 */
export function loraUpdateComposed(x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, scaling: number, mask: Float32Array | undefined): tf.Tensor2D {
  const xm = mask === undefined ? x : tf.mul(x, tf.tensor2d(mask, x.shape));
  return tf.mul(tf.matMul(tf.matMul(xm, a, false, true), b, false, true), scaling);
}
