/**
 * Element-wise and normalisation ops as single ops with hand-written gradients: the autograd tape of a
 * composed version keeps every intermediate (a GELU on [T, 4C] keeps five [T, 4C] tensors); these keep
 * only their input, which the caller holds anyway, and recompute what backward needs. Forward values are
 * computed with the same formulas as the composed ops. Gradients flow to x only: the norm's weight and
 * bias are frozen base weights.
 */
import * as tf from '@tensorflow/tfjs-core';

type Unary = (x: tf.Tensor) => tf.Tensor;

/** An op f(x) whose gradient is dy * f'(x), with f' computed from x in backward. */
function unaryOp(forward: Unary, derivative: Unary): Unary {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([x]);
    return {
      value: tf.tidy(() => forward(x)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => tf.mul(dy, derivative(saved[0]!))),
    };
  });
  return (x) => op(x);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)). */
export const geluErf = unaryOp(
  (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)),
  // 0.5 (1 + erf(x/sqrt2)) + x * exp(-x^2/2) / sqrt(2 pi)
  (x) => tf.add(tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5), tf.mul(x, tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI))),
);

/** tanh GELU, 0.5 x (1 + tanh(c x (1 + a x^2))) with c = `scale`. */
function geluTanh(scale: number): Unary {
  const inner = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, scale), tf.add(tf.mul(tf.square(x), 0.044715), 1));
  return unaryOp(
    (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner(x)), 1)),
    (x) => {
      const t = tf.tanh(inner(x));
      // 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
      const dInner = tf.mul(tf.add(tf.mul(tf.square(x), 3 * 0.044715), 1), scale);
      return tf.add(tf.mul(tf.add(t, 1), 0.5), tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(t))), dInner));
    },
  );
}

/** transformers' gelu_new / gelu_pytorch_tanh */
export const geluNew = geluTanh(SQRT_2_OVER_PI);
/** transformers' gelu_fast (the constant written out as 0.7978845608) */
export const geluFast = geluTanh(0.7978845608);

/** RWKV's channel-mix activation relu(x)^2. */
export const reluSquared = unaryOp((x) => tf.square(tf.relu(x)), (x) => tf.mul(tf.relu(x), 2));

/**
 * LayerNorm over the last axis (biased variance, as torch.nn.LayerNorm) with frozen weight and bias.
 * Backward recomputes the statistics from x: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w.
 */
export function frozenLayerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const normalize = (v: tf.Tensor) => {
    const { mean, variance } = tf.moments(v, -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    return { xhat: tf.mul(tf.sub(v, mean), rstd), rstd };
  };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([input]);
    return {
      value: tf.tidy(() => tf.add(tf.mul(normalize(input).xhat, weight), bias)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const { xhat, rstd } = normalize(saved[0]!);
        const g = tf.mul(dy, weight);
        const meanG = tf.mean(g, -1, true);
        const meanGX = tf.mean(tf.mul(g, xhat), -1, true);
        return tf.mul(tf.sub(tf.sub(g, meanG), tf.mul(xhat, meanGX)), rstd);
      }),
    };
  });
  return op(x);
}
