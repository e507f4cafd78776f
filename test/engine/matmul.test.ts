import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { matMul } from '../../src/engine/matmul.js';
import { useBackend } from '../helpers/backend.js';

describe('engine matMul (plain-operand products on wasm)', () => {
  beforeAll(async () => { await useBackend(); });

  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [7, 3], true, false],
    [[7, 5], [3, 7], true, true],
    [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
    [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
    [[2, 7, 5], [2, 7, 4], true, false],
    [[2, 5, 7], [7, 4], false, false],
    [[64, 9], [300, 9], false, true],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} equals tf.matMul`, () => {
      const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
      const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
      const ref = tf.matMul(a, b, ta, tb);
      const got = matMul(a, b, ta, tb);
      expect(got.shape).toEqual(ref.shape);
      expect(tf.max(tf.abs(tf.sub(ref, got))).dataSync()[0]).toBeLessThan(1e-4);
    });
  }

  it('is differentiable through the registered gradients', () => {
    const a = tf.randomNormal([4, 6], 0, 1, 'float32', 3);
    const b = tf.randomNormal([5, 6], 0, 1, 'float32', 4);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matMul(x, y, false, true))))([a, b]);
    const [ra, rb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([a, b]);
    expect(tf.max(tf.abs(tf.sub(ga!, ra!))).dataSync()[0]).toBeLessThan(1e-3);
    expect(tf.max(tf.abs(tf.sub(gb!, rb!))).dataSync()[0]).toBeLessThan(1e-3);
  });
});
