import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './matmul.js';

/**
 * Weighted next-token cross-entropy as one op: sum_i w_i (logsumexp(z_i) - z_i[t_i]) / normalizer.
 * logits [N, V], targets int32 [N], weights float32 [N] (0 masks a position out).
 * The gradient is (softmax(z_i) - onehot(t_i)) * w_i / normalizer, computed directly rather than by
 * autograd through logsumexp and a one-hot product, so backward touches [N, V] twice, not six times.
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D, normalizer: number): tf.Scalar {
  const [n, v] = logits.shape;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const z = args[0] as tf.Tensor2D;
    // targets and weights are saved too: the caller's tidy may dispose them before backward runs
    (args[1] as tf.GradSaveFunc)([z, targets, weights]);
    const value = tf.tidy(() => {
      const lse = tf.logSumExp(z, 1);
      const flat = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(v, 'int32')), tf.cast(targets, 'int32'));
      const picked = tf.gather(tf.reshape(z, [-1]), flat);
      return tf.div(tf.sum(tf.mul(tf.sub(lse, picked), weights)), normalizer) as tf.Scalar;
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [zs, ts, ws] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const scale = tf.mul(tf.reshape(ws, [n, 1]), tf.div(dy, normalizer));
        return tf.mul(tf.sub(tf.softmax(zs), tf.oneHot(tf.cast(ts, 'int32'), v)), scale);
      }),
    };
  });
  return op(logits);
}

/**
 * weightedCrossEntropy(hidden · W^T) for a frozen output head W [V, C], computed `chunk` rows at a
 * time: the [N, V] logits are never held whole, in the forward pass or the backward pass (which
 * recomputes each chunk's logits). Differentiable in `hidden` only.
 */
export function headCrossEntropy(
  hidden: tf.Tensor2D, head: tf.Tensor2D, targets: Int32Array, weights: Float32Array, normalizer: number, chunk = 128,
): tf.Scalar {
  const [n, c] = hidden.shape;
  const v = head.shape[0];
  const spans: [number, number][] = [];
  for (let s = 0; s < n; s += chunk) spans.push([s, Math.min(n, s + chunk)]);
  const chunkLogits = (h: tf.Tensor2D, s: number, e: number): tf.Tensor2D =>
    matMul(tf.slice(h, [s, 0], [e - s, c]), head, false, true) as tf.Tensor2D;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    (args[1] as tf.GradSaveFunc)([h]);
    // each chunk's sum stays on the device; one read at the end, summed in double precision
    const stacked = tf.tidy(() => tf.stack(spans.map(([s, e]) => tf.tidy(() => {
      const z = chunkLogits(h, s, e);
      const t = tf.tensor1d(targets.subarray(s, e), 'int32');
      const w = tf.tensor1d(weights.subarray(s, e));
      const flat = tf.add(tf.mul(tf.range(0, e - s, 1, 'int32'), tf.scalar(v, 'int32')), t);
      const nll = tf.sub(tf.logSumExp(z, 1), tf.gather(tf.reshape(z, [-1]), flat));
      return tf.sum(tf.mul(nll, w));
    }))));
    const sums = stacked.dataSync();
    stacked.dispose();
    let total = 0;
    for (const x of sums) total += x;
    return {
      value: tf.scalar(total / normalizer),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const hs = saved[0] as tf.Tensor2D;
        const scale = dy.dataSync()[0]! / normalizer;
        const parts = spans.map(([s, e]) => tf.tidy(() => {
          const z = chunkLogits(hs, s, e);
          const w = tf.reshape(tf.mul(tf.tensor1d(weights.subarray(s, e)), scale), [e - s, 1]);
          const g = tf.mul(tf.sub(tf.softmax(z), tf.oneHot(tf.tensor1d(targets.subarray(s, e), 'int32'), v)), w);
          return matMul(g, head) as tf.Tensor2D;
        }));
        const dh = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
        if (parts.length > 1) parts.forEach((p) => p.dispose());
        return dh;
      },
    };
  });
  return op(hidden);
}
