import * as tf from '@tensorflow/tfjs-core';
import { headCrossEntropy, weightedCrossEntropy } from '../engine/cross-entropy.js';
import { DenseLinear } from './linear.js';
import type { CausalLM } from './types.js';
import { WEIGHT_NAMES } from './weight-names.js';

/** The output head's weight when it is a frozen dense layer without bias (the loss can then be chunked). */
function frozenHeadWeight(model: CausalLM): tf.Tensor2D | undefined {
  const head = model.linears.get(WEIGHT_NAMES[model.architecture].head);
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
