import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { causalAttention, frozenLayerNorm, geluErf, geluFast, geluNew, reluSquared } from '../../src/engine/fused.js';
import {
  attentionComposed, geluErfComposed, geluFastComposed, geluNewComposed, layerNormComposed, reluSquaredComposed,
} from '../../src/engine/reference/composed.js';
import { useBackend } from '../helpers/backend.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('fused ops with hand-written gradients', () => {
  beforeAll(async () => { await useBackend(); });

  const x = () => tf.randomNormal([3, 5, 17], 0, 2, 'float32', 9);
  const cases: [string, (t: tf.Tensor) => tf.Tensor, (t: tf.Tensor) => tf.Tensor][] = [
    ['gelu (erf)', geluErf, geluErfComposed],
    ['gelu_new', geluNew, geluNewComposed],
    ['gelu_fast', geluFast, geluFastComposed],
    ['relu^2', reluSquared, reluSquaredComposed],
  ];
  for (const [name, fused, composed] of cases) {
    it(`${name}: same values and gradient as the composed ops`, () => {
      const input = x();
      const dy = tf.randomNormal(input.shape, 0, 1, 'float32', 4);
      expect(maxAbs(fused(input), composed(input))).toBeLessThan(1e-6);
      const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fused(t), dy)))(input);
      const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(composed(t), dy)))(input);
      expect(maxAbs(g1, g2)).toBeLessThan(1e-4);
    });
  }

  it('layer norm: same values and input gradient as the composed ops', () => {
    const input = x();
    const w = tf.randomNormal([17], 1, 0.3, 'float32', 5);
    const b = tf.randomNormal([17], 0, 0.3, 'float32', 6);
    const dy = tf.randomNormal(input.shape, 0, 1, 'float32', 7);
    const composed = (t: tf.Tensor) => layerNormComposed(t, w, b, 1e-5);
    expect(maxAbs(frozenLayerNorm(input, w, b, 1e-5), composed(input))).toBeLessThan(1e-6);
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(frozenLayerNorm(t, w, b, 1e-5), dy)))(input);
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(composed(t), dy)))(input);
    expect(maxAbs(g1, g2)).toBeLessThan(1e-4);
  });

  it('causal attention: same output and q/k/v gradients as softmax(q k^T / sqrt d + mask) v', () => {
    const [B, H, T, d] = [2, 3, 7, 4];
    const q = tf.randomNormal([B, H, T, d], 0, 1, 'float32', 21) as tf.Tensor4D;
    const k = tf.randomNormal([B, H, T, d], 0, 1, 'float32', 22) as tf.Tensor4D;
    const v = tf.randomNormal([B, H, T, d], 0, 1, 'float32', 23) as tf.Tensor4D;
    const dy = tf.randomNormal([B, H, T, d], 0, 1, 'float32', 24);
    const m = new Float32Array(T * T);
    for (let t = 0; t < T; t++) m.fill(-1e9, t * T + t + 1, (t + 1) * T);
    const mask = tf.tensor2d(m, [T, T]);
    const composed = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attentionComposed(a, b, c, mask);
    expect(maxAbs(causalAttention(q, k, v, mask), composed(q, k, v))).toBeLessThan(1e-5);
    const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), dy));
    const g1 = tf.grads(loss((a, b, c) => causalAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask)))([q, k, v]);
    const g2 = tf.grads(loss(composed))([q, k, v]);
    g1.forEach((g, i) => expect(maxAbs(g, g2[i]!), ['q', 'k', 'v'][i]).toBeLessThan(1e-4));
  });
});
