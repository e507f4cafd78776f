/** Small composed ops shared by the models (all differentiable by autograd). */
import * as tf from '@tensorflow/tfjs-core';
import '../engine/gradients.js';
import type { GptNeoXActivation } from './config.js';

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias);
  });
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

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The activation functions transformers names in hidden_act. */
export function activation(name: GptNeoXActivation, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    switch (name) {
      case 'gelu':
      case 'gelu_python': // exact: 0.5 x (1 + erf(x / sqrt 2))
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
      case 'gelu_new':
      case 'gelu_pytorch_tanh': // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), SQRT_2_OVER_PI)), 1));
      case 'gelu_fast': // 0.5 x (1 + tanh(0.7978845608 x (1 + 0.044715 x^2)))
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.mul(x, 0.7978845608), tf.add(tf.mul(tf.square(x), 0.044715), 1))), 1));
      case 'relu':
        return tf.relu(x);
    }
  });
}
