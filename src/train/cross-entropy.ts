import * as tf from '@tensorflow/tfjs-core';

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
