import * as tf from '@tensorflow/tfjs-core';

/**
 * Mean next-token cross-entropy (natural log): the mean over rows b and positions t = 0..T-2 of
 * logsumexp(logits[b, t]) - logits[b, t, ids[b, t+1]]. Differentiable in `logits`. Needs T >= 2.
 */
export function meanNextTokenLoss(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Scalar {
  const [B, T, V] = logits.shape;
  if (T < 2) throw new Error(`meanNextTokenLoss: need at least 2 positions, got ${T}`);
  if (ids.shape[0] !== B || ids.shape[1] !== T) throw new Error(`meanNextTokenLoss: ids [${ids.shape}] do not match logits [${logits.shape}]`);
  return tf.tidy(() => {
    const pred = tf.slice(logits, [0, 0, 0], [B, T - 1, V]);
    const targets = tf.cast(tf.slice(ids, [0, 1], [B, T - 1]), 'int32');
    // the target logit by a one-hot product (the gather gradient is missing on wasm)
    const picked = tf.sum(tf.mul(pred, tf.oneHot(targets, V)), -1);
    return tf.mean(tf.sub(tf.logSumExp(pred, -1), picked));
  });
}
