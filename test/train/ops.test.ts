import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, clipByGlobalNorm } from '../../src/runtime/tfjs-adamw.js';
import { headCrossEntropy, weightedCrossEntropy } from '../../src/engine/cross-entropy.js';
import { learningRate } from '../../src/train/schedule.js';
import { microBatchOf } from '../../src/train/micro-batch.js';
import { useBackend } from '../helpers/backend.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('weighted cross-entropy op', () => {
  beforeAll(async () => { await useBackend(); });

  it('matches log-softmax composition in value and gradient', () => {
    const n = 7, v = 11;
    const logits = tf.randomNormal([n, v], 0, 3, 'float32', 5) as tf.Tensor2D;
    const targets = tf.tensor1d([0, 3, 10, 5, 5, 1, 9], 'int32');
    const weights = tf.tensor1d([1, 0, 1, 1, 0, 1, 1]);
    const normalizer = 9;
    const reference = (z: tf.Tensor): tf.Scalar => tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(targets, v)), 1)), weights)), normalizer);
    const got = tf.valueAndGrad((z: tf.Tensor) => weightedCrossEntropy(z as tf.Tensor2D, targets, weights, normalizer))(logits);
    const ref = tf.valueAndGrad(reference)(logits);
    expect(Math.abs(got.value.dataSync()[0]! - ref.value.dataSync()[0]!)).toBeLessThan(1e-5);
    expect(maxAbs(got.grad, ref.grad)).toBeLessThan(1e-6);
    // masked rows get no gradient
    expect(tf.tidy(() => tf.max(tf.abs(tf.slice(got.grad, [1, 0], [1, v]))).dataSync()[0])).toBe(0);
  });
});

describe('AdamW', () => {
  beforeAll(async () => { await useBackend(); });

  it('makes the update torch.optim.AdamW makes (float64 reference)', () => {
    const p0 = [0.5, -1.25, 2, 0];
    const gradsSeq = [[0.1, -0.2, 0.3, 0], [0.05, 0.4, -0.3, 1e-3], [-0.2, 0.1, 0.1, -1]];
    const o = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };
    const lr = 0.01;
    const p = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['p', p]]), o);
    const ref = [...p0];
    const m = [0, 0, 0, 0], v = [0, 0, 0, 0];
    gradsSeq.forEach((g, t) => {
      const g1 = tf.tensor1d(g);
      opt.step(new Map([['p', g1]]), lr);
      g1.dispose();
      for (let i = 0; i < 4; i++) {
        ref[i]! *= 1 - lr * o.weightDecay;
        m[i] = o.beta1 * m[i]! + (1 - o.beta1) * g[i]!;
        v[i] = o.beta2 * v[i]! + (1 - o.beta2) * g[i]! ** 2;
        const bc1 = 1 - o.beta1 ** (t + 1), bc2 = 1 - o.beta2 ** (t + 1);
        ref[i]! -= (lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + o.epsilon));
      }
    });
    const got = p.dataSync();
    ref.forEach((r, i) => expect(Math.abs(got[i]! - r)).toBeLessThan(1e-6));
    // state round trip
    const exported = opt.exportState();
    const p2 = tf.variable(tf.tensor1d(Array.from(got)));
    const opt2 = new AdamW(new Map([['p', p2]]), o);
    opt2.importState(exported, opt.stepCount);
    const g = tf.tensor1d([0.3, 0.3, -0.3, 0.3]);
    opt.step(new Map([['p', g]]), lr);
    opt2.step(new Map([['p', g]]), lr);
    expect(Array.from(p2.dataSync())).toEqual(Array.from(p.dataSync()));
  });

  it('clips by global norm like clip_grad_norm_', () => {
    const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor1d([0, 4])]]);
    const norm = clipByGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads.get('a')!.dataSync())[0]).toBeCloseTo(3 / (5 + 1e-6), 6);
    const small = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.3, 0.4])]]);
    expect(clipByGlobalNorm(small, 1)).toBeCloseTo(0.5, 6);
    expect(Array.from(small.get('a')!.dataSync())[0]).toBeCloseTo(0.3, 6);
  });
});

describe('learning-rate schedules', () => {
  it('warm up linearly from 0, then hold, decay linearly or by half-cosine to 0', () => {
    expect(learningRate('constant', 1, 0, 4, 10)).toBe(0);
    expect(learningRate('constant', 1, 2, 4, 10)).toBe(0.5);
    expect(learningRate('constant', 1, 7, 4, 10)).toBe(1);
    expect(learningRate('linear', 1, 4, 4, 10)).toBe(1);
    expect(learningRate('linear', 1, 7, 4, 10)).toBeCloseTo(0.5, 12);
    expect(learningRate('linear', 1, 10, 4, 10)).toBe(0);
    expect(learningRate('cosine', 2, 0, 0, 10)).toBe(2);
    expect(learningRate('cosine', 2, 5, 0, 10)).toBeCloseTo(1, 12);
    expect(learningRate('cosine', 2, 10, 0, 10)).toBeCloseTo(0, 12);
  });
});

describe('chunked head cross-entropy', () => {
  beforeAll(async () => { await useBackend(); });

  it('equals the unchunked loss and hidden-state gradient', () => {
    const n = 37, c = 9, v = 23;
    const hidden = tf.randomNormal([n, c], 0, 1, 'float32', 11) as tf.Tensor2D;
    const head = tf.randomNormal([v, c], 0, 1, 'float32', 12) as tf.Tensor2D;
    const targets = Int32Array.from({ length: n }, (_, i) => (i * 7) % v);
    const weights = Float32Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1));
    const ref = tf.valueAndGrad((h: tf.Tensor) => weightedCrossEntropy(tf.matMul(h, head, false, true) as tf.Tensor2D,
      tf.tensor1d(targets, 'int32'), tf.tensor1d(weights), 13))(hidden);
    const got = tf.valueAndGrad((h: tf.Tensor) => headCrossEntropy(h as tf.Tensor2D, head, targets, weights, 13, 8))(hidden);
    expect(Math.abs(got.value.dataSync()[0]! - ref.value.dataSync()[0]!)).toBeLessThan(1e-5);
    expect(maxAbs(got.grad, ref.grad)).toBeLessThan(1e-5);
  });
});

describe('micro-batch trimming', () => {
  it('cuts every row after the last position that counts in any row', () => {
    const T = 6;
    const block = (input: number[], weight: number[]) => ({ input: Int32Array.from(input), target: Int32Array.from(input.map((x) => x + 100)), weight: Uint8Array.from(weight), targets: weight.reduce((a, b) => a + b, 0), padding: 0 });
    const a = block([1, 2, 3, 4, 0, 0], [0, 1, 1, 0, 0, 0]);
    const b = block([5, 6, 7, 8, 9, 0], [0, 0, 0, 1, 0, 0]);
    const batch = { epoch: 0, index: 0, blocks: [a, b], input: Int32Array.from([...a.input, ...b.input]), target: Int32Array.from([...a.target, ...b.target]), weight: Uint8Array.from([...a.weight, ...b.weight]), targets: 3 };
    const mb = microBatchOf(batch, T);
    expect(mb.length).toBe(4);
    expect(Array.from(mb.input)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(mb.target)).toEqual([101, 102, 103, 104, 105, 106, 107, 108]);
    expect(Array.from(mb.weight)).toEqual([0, 1, 1, 0, 0, 0, 0, 1]);
    const full = block([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1]);
    expect(microBatchOf({ ...batch, blocks: [full], input: full.input, target: full.target, weight: full.weight }, T).length).toBe(T);
  });
});
