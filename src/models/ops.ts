/** Small ops shared by the models (all differentiable). */
import * as tf from '@tensorflow/tfjs-core';
import '../engine/gradients.js';
import { frozenLayerNorm, geluErf, geluFast, geluNew } from '../engine/fused.js';
import type { GptNeoXActivation } from './config.js';

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm (frozen weight and bias). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return frozenLayerNorm(x, weight, bias, eps);
}

/** Token shift: z [B, T, C] -> the previous position's z, with `prev` [B, C] (zeros if absent) before t = 0. */
export function shiftTokens(z: tf.Tensor3D, prev?: tf.Tensor2D): tf.Tensor3D {
  const [B, T, C] = z.shape;
  return tf.tidy(() => {
    const first = prev ? tf.reshape(prev, [B, 1, C]) : tf.zeros([B, 1, C]);
    return T === 1 ? (first as tf.Tensor3D) : tf.concat([first, tf.slice(z, [0, 0, 0], [B, T - 1, C])], 1) as tf.Tensor3D;
  });
}

/** x [B, T, C] -> x[:, T-1] [B, C] */
export function lastPosition(x: tf.Tensor3D): tf.Tensor2D {
  const [B, T, C] = x.shape;
  return tf.tidy(() => tf.reshape(tf.slice(x, [0, T - 1, 0], [B, 1, C]), [B, C]));
}

/** The activation functions transformers names in hidden_act. */
export function activation(name: GptNeoXActivation, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case 'gelu':
    case 'gelu_python':
      return geluErf(x);
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluNew(x);
    case 'gelu_fast':
      return geluFast(x);
    case 'relu':
      return tf.relu(x);
  }
}
