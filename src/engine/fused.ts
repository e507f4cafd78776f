/**
 * Element-wise and normalisation ops as single ops with hand-written gradients: the autograd tape of a
 * composed version keeps every intermediate (a GELU on [T, 4C] keeps five [T, 4C] tensors); these keep
 * only their input, which the caller holds anyway, and recompute what backward needs. Forward values are
 * computed with the same formulas as the composed ops. Gradients flow to x only: the norm's weight and
 * bias are frozen base weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './matmul.js';

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

/**
 * Causal self-attention softmax(q k^T / sqrt(d) + mask) v over q, k, v [B, heads, T, d], as one op.
 * The tape keeps q, k, v, the output and the row log-sum-exp; backward recomputes the [T, T]
 * probabilities from them (as flash attention does), so no [heads, T, T] tensor outlives its layer.
 * `mask` [T, T] is added to the scores (a large negative number above the diagonal).
 */
export function causalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor4D {
  const scale = 1 / Math.sqrt(q.shape[3]);
  const probabilities = (qs: tf.Tensor, ks: tf.Tensor, lse: tf.Tensor, m: tf.Tensor): tf.Tensor =>
    tf.exp(tf.sub(tf.add(tf.mul(matMul(qs, ks, false, true), scale), m), lse));
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const [out, lse] = tf.tidy(() => {
      const scores = tf.add(tf.mul(matMul(qi, ki, false, true), scale), mask);
      const p = tf.softmax(scores);
      // log-sum-exp from the softmax itself: lse = max(s) - log(max(p)); max(p) >= 1/T never underflows
      const l = tf.sub(tf.max(scores, -1, true), tf.log(tf.max(p, -1, true)));
      return [matMul(p, vi), l];
    });
    // the mask is saved too: the caller's tidy may dispose it before backward runs
    (args[3] as tf.GradSaveFunc)([qi, ki, vi, out!, lse!, mask]);
    return {
      value: out as tf.Tensor4D,
      gradFunc: (dOut: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [qs, ks, vs, os, ls, ms] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const p = probabilities(qs, ks, ls, ms);
        const dV = matMul(p, dOut, true, false);
        const dP = matMul(dOut, vs, false, true);
        const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dOut, os), -1, true)));
        return [tf.mul(matMul(dS, ks), scale), tf.mul(matMul(dS, qs, true, false), scale), dV];
      }),
    };
  });
  return op(q, k, v);
}
