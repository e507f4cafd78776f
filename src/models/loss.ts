import * as tf from '@tensorflow/tfjs-core';
import { headCrossEntropy, weightedCrossEntropy } from '../engine/cross-entropy.js';
import { DenseLinear } from './linear.js';
import type { CausalLM } from './types.js';

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

/** The output head's weight when it is a frozen dense layer without bias (the loss can then be chunked). */
export function frozenHeadWeight(model: CausalLM): tf.Tensor2D | undefined {
  const head = model.linears.get('head') ?? model.linears.get('embed_out');
  return head instanceof DenseLinear && !head.hasBias ? head.weight : undefined;
}

/**
 * sum_i w_i * nll(target_i | hidden_i) / normalizer for hidden states [N, C]. With a frozen dense head
 * the logits are made 128 rows at a time (never [N, V] whole); otherwise through the head's own apply.
 * Differentiable in `hidden` (and in a LoRA head's variables).
 */
export function sequenceLoss(model: CausalLM, hidden: tf.Tensor2D, targets: Int32Array, weights: Float32Array, normalizer: number): tf.Scalar {
  const head = frozenHeadWeight(model);
  if (head) return headCrossEntropy(hidden, head, targets, weights, normalizer);
  const logits = model.logits(hidden) as tf.Tensor2D;
  return weightedCrossEntropy(logits, tf.tensor1d(targets, 'int32'), tf.tensor1d(weights), normalizer);
}
