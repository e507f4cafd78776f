import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/engine/gradients.js';
import { TEST_BACKEND, useBackend } from '../helpers/backend.js';
import { uniform } from '../lora/helpers.js';

/** Deterministic values in [lo, hi). */
function values(shape: number[], seed: number, lo = -2, hi = 2): tf.Tensor {
  return tf.tensor(uniform(shape.reduce((a, b) => a * b, 1), lo, hi, seed), shape);
}

/**
 * Check tf.grads of sum(f(xs) * G) against central differences for every element of every input.
 * float32 differences with eps 1e-2 are good to about 1e-3 on these smooth, O(1) functions.
 */
function checkGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): void {
  tf.tidy(() => {
    const G = values(f(...inputs).shape, 1234, -1, 1);
    const scalar = (...xs: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(f(...xs), G));
    const analytic = tf.grads(scalar)(inputs).map((g) => g.dataSync());
    const eps = 1e-2;
    inputs.forEach((x, which) => {
      const base = x.dataSync();
      for (let i = 0; i < base.length; i++) {
        const at = (delta: number): number => {
          const shifted = base.slice();
          shifted[i] = base[i]! + delta;
          const xs = inputs.map((t, j) => (j === which ? tf.tensor(shifted, x.shape) : t));
          return scalar(...xs).dataSync()[0]!;
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        expect(Math.abs(analytic[which]![i]! - numeric), `input ${which} element ${i}: ${analytic[which]![i]} vs ${numeric}`)
          .toBeLessThan(3e-3 * Math.max(1, Math.abs(numeric)));
      }
    });
  });
}

describe(`registered gradients (${TEST_BACKEND})`, () => {
  beforeAll(async () => {
    await useBackend();
  });

  const a23 = (): tf.Tensor => values([2, 3], 1);
  const b23 = (): tf.Tensor => values([2, 3], 2);
  const pos23 = (): tf.Tensor => values([2, 3], 3, 0.5, 2);
  const awayFromZero = (): tf.Tensor => tf.tensor([[-1.5, -0.7, 0.4], [0.9, -0.2, 1.3]]);

  const cases: Array<[string, () => void]> = [
    ['add (broadcast)', () => checkGrads((a, b) => tf.add(a!, b!), [a23(), values([3], 4)])],
    ['sub (broadcast)', () => checkGrads((a, b) => tf.sub(a!, b!), [a23(), values([2, 1], 5)])],
    ['mul (broadcast)', () => checkGrads((a, b) => tf.mul(a!, b!), [values([2, 1, 3], 6), values([4, 1], 7)])],
    ['div', () => checkGrads((a, b) => tf.div(a!, b!), [a23(), pos23()])],
    ['maximum / minimum', () => checkGrads((a, b) => tf.add(tf.maximum(a!, b!), tf.minimum(a!, b!)), [a23(), b23()])],
    ['maximum (broadcast)', () => checkGrads((a, b) => tf.maximum(a!, b!), [a23(), values([3], 8)])],
    ['squaredDifference', () => checkGrads((a, b) => tf.squaredDifference(a!, b!), [a23(), values([3], 9)])],
    ['pow', () => checkGrads((a, b) => tf.pow(a!, b!), [pos23(), values([2, 3], 10, 0.5, 2.5)])],
    ['neg, exp, log, log1p', () => checkGrads((x) => tf.addN([tf.neg(x!), tf.exp(x!), tf.log(x!), tf.log1p(x!)]), [pos23()])],
    ['square, sqrt, rsqrt', () => checkGrads((x) => tf.addN([tf.square(x!), tf.sqrt(x!), tf.rsqrt(x!)]), [pos23()])],
    ['abs, relu', () => checkGrads((x) => tf.add(tf.abs(x!), tf.mul(tf.relu(x!), 3)), [awayFromZero()])],
    ['erf, sigmoid, tanh', () => checkGrads((x) => tf.addN([tf.erf(x!), tf.sigmoid(x!), tf.tanh(x!)]), [a23()])],
    ['cast, clone', () => checkGrads((x) => tf.mul(tf.cast(x!, 'float32'), tf.clone(x!)), [a23()])],
    ['matMul, all transposes', () => {
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        checkGrads((a, b) => tf.matMul(a!, b!, tA, tB), [values(tA ? [4, 2] : [2, 4], 11), values(tB ? [3, 4] : [4, 3], 12)]);
      }
    }],
    ['matMul, batched 4-D', () => checkGrads((a, b) => tf.matMul(a!, b!, false, true), [values([2, 2, 3, 4], 13), values([2, 2, 5, 4], 14)])],
    ['reshape, expandDims, transpose', () => checkGrads((x) => tf.transpose(tf.expandDims(tf.reshape(x!, [3, 2]), 1), [2, 0, 1]), [a23()])],
    ['broadcastTo', () => checkGrads((x) => tf.broadcastTo(x!, [4, 2, 3]), [values([2, 1], 15)])],
    ['tile', () => checkGrads((x) => tf.tile(x!, [2, 1, 3]), [values([2, 3, 2], 24)])],
    ['slice, pad', () => checkGrads((x) => tf.pad(tf.slice(x!, [0, 1], [2, -1]), [[1, 0], [0, 2]]), [a23()])],
    ['concat, split', () => checkGrads((a, b) => {
      const [p, q] = tf.split(tf.concat([a!, b!], 1), [4, 2], 1);
      return tf.mul(p!, tf.sum(q!));
    }, [a23(), values([2, 3], 16)])],
    ['stack, unstack', () => checkGrads((a, b) => {
      const rows = tf.unstack(tf.stack([a!, b!], 1), 0);
      return tf.mul(rows[0]!, rows[1]!);
    }, [a23(), b23()])],
    ['sum, mean', () => checkGrads((x) => tf.add(tf.sum(x!, 1), tf.mul(tf.mean(x!, 0, true), 2)), [values([3, 3], 17)])],
    ['max, min', () => checkGrads((x) => tf.add(tf.sum(tf.max(x!, -1)), tf.sum(tf.min(x!, 0))), [a23()])],
    ['logSumExp', () => checkGrads((x) => tf.logSumExp(x!, -1), [values([2, 5], 18, -3, 3)])],
    ['softmax', () => checkGrads((x) => tf.softmax(x!), [values([2, 4], 19)])],
    ['logSoftmax', () => checkGrads((x) => tf.logSoftmax(x!), [values([2, 4], 20)])],
    ['where', () => checkGrads((a, b) => tf.where(tf.tensor([[true, false, true], [false, false, true]]), a!, b!), [a23(), b23()])],
    ['gather rows (embedding lookup)', () => checkGrads((x) => tf.gather(x!, tf.tensor2d([[0, 2, 2], [1, 0, 3]], [2, 3], 'int32')), [values([4, 3], 21)])],
    ['moments (layer norm)', () => checkGrads((x) => {
      const { mean, variance } = tf.moments(x!, -1, true);
      return tf.div(tf.sub(x!, mean), tf.sqrt(tf.add(variance, 1e-5)));
    }, [values([2, 5], 22)])],
  ];

  it.each(cases)('%s', (_name, run) => run());

  it('the matMul gradient has no stray tensors', () => {
    const [a, b] = [a23(), values([3, 4], 23)];
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y)))([a, b]);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });
});
