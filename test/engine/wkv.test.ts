import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { wkvFloat64 } from '../../src/engine/reference/wkv.js';
import { emptyWkvState, wkv, wkvReference, wkvWithState } from '../../src/engine/wkv.js';
import { TEST_BACKEND, useBackend } from '../helpers/backend.js';
import { uniform } from '../lora/helpers.js';

interface Case {
  B: number;
  T: number;
  C: number;
  w: Float32Array;
  u: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

function makeCase(B: number, T: number, C: number, kLo: number, kHi: number, seed: number): Case {
  return {
    B, T, C,
    w: uniform(C, -1, 2, seed).map((d) => -Math.exp(d)), // w = -exp(time_decay), time_decay in [-1, 2)
    u: uniform(C, -1, 1, seed + 1),
    k: uniform(B * T * C, kLo, kHi, seed + 2),
    v: uniform(B * T * C, -2, 2, seed + 3),
  };
}

function tensors(c: Case): [tf.Tensor1D, tf.Tensor1D, tf.Tensor3D, tf.Tensor3D] {
  return [tf.tensor1d(c.w), tf.tensor1d(c.u), tf.tensor3d(c.k, [c.B, c.T, c.C]), tf.tensor3d(c.v, [c.B, c.T, c.C])];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Gradients of sum(y * G) for all four inputs. */
function gradsOf(op: typeof wkv, inputs: tf.Tensor[], G: tf.Tensor): Float32Array[] {
  return tf.tidy(() => {
    const f = (...xs: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(op(...(xs as Parameters<typeof wkv>)), G));
    return tf.grads(f)(inputs).map((g) => g.dataSync() as Float32Array);
  });
}

describe(`wkv (${TEST_BACKEND})`, () => {
  beforeAll(async () => {
    await useBackend();
  });

  const cases: Array<[string, Case]> = [
    ['ordinary k', makeCase(2, 17, 5, -3, 3, 11)],
    ['large k (30..60)', makeCase(2, 13, 4, 30, 60, 21)],
    ['mixed huge and small k (-60..90)', makeCase(1, 16, 6, -60, 90, 31)],
  ];

  it.each(cases)('forward matches the composed-op reference and float64 (%s)', (_name, c) => {
    tf.tidy(() => {
      const inputs = tensors(c);
      const y = wkv(...inputs).dataSync();
      const ref = wkvReference(...inputs).dataSync();
      expect(maxAbsDiff(y, ref)).toBeLessThan(1e-5);
      expect(y.every(Number.isFinite)).toBe(true);
      if (maxAbs(c.k) < 100) {
        const exact = wkvFloat64(c.B, c.T, c.C, c.w, c.u, c.k, c.v);
        expect(maxAbsDiff(y, exact)).toBeLessThan(1e-5);
      }
    });
  });

  it.each(cases)('gradients of w, u, k, v match autograd through the reference (%s)', (_name, c) => {
    tf.tidy(() => {
      const inputs = tensors(c);
      const G = tf.tensor3d(uniform(c.B * c.T * c.C, -1, 1, 99), [c.B, c.T, c.C]);
      const ours = gradsOf(wkv, inputs, G);
      const ref = gradsOf(wkvReference, inputs, G);
      ['w', 'u', 'k', 'v'].forEach((name, i) => {
        const scale = Math.max(1, maxAbs(ref[i]!));
        expect(ours[i]!.every(Number.isFinite), name).toBe(true);
        expect(maxAbsDiff(ours[i]!, ref[i]!) / scale, name).toBeLessThan(2e-5);
      });
    });
  });

  it('gradients match float64 central differences', () => {
    const c = makeCase(2, 5, 3, -2, 4, 41);
    const G = uniform(c.B * c.T * c.C, -1, 1, 7);
    const inputs64 = [c.w, c.u, c.k, c.v].map((a) => Float64Array.from(a));
    const loss = (xs: Float64Array[]): number => {
      const y = wkvFloat64(c.B, c.T, c.C, xs[0]!, xs[1]!, xs[2]!, xs[3]!);
      return y.reduce((s, yi, i) => s + yi * G[i]!, 0);
    };
    const ours = tf.tidy(() => gradsOf(wkv, tensors(c), tf.tensor3d(G, [c.B, c.T, c.C])));
    const h = 1e-6;
    inputs64.forEach((x, which) => {
      for (let i = 0; i < x.length; i++) {
        const plus = inputs64.map((a) => a.slice()), minus = inputs64.map((a) => a.slice());
        plus[which]![i] = x[i]! + h;
        minus[which]![i] = x[i]! - h;
        const fd = (loss(plus) - loss(minus)) / (2 * h);
        expect(Math.abs(ours[which]![i]! - fd), `input ${'wukv'[which]}[${i}]`).toBeLessThan(1e-5 * Math.max(1, Math.abs(fd)));
      }
    });
  });

  it('carries state: two chunks equal one pass, and the state matches a token-by-token run', () => {
    const c = makeCase(2, 12, 4, -5, 40, 51);
    tf.tidy(() => {
      const [w, u, k, v] = tensors(c);
      const whole = wkv(w, u, k, v);
      const first = wkvWithState(w, u, tf.slice(k, [0, 0, 0], [2, 7, 4]), tf.slice(v, [0, 0, 0], [2, 7, 4]), emptyWkvState(2, 4));
      const second = wkvWithState(w, u, tf.slice(k, [0, 7, 0], [2, 5, 4]), tf.slice(v, [0, 7, 0], [2, 5, 4]), first.state);
      expect(maxAbsDiff(tf.concat([first.y, second.y], 1).dataSync(), whole.dataSync())).toBeLessThan(1e-6);
      let state = emptyWkvState(2, 4);
      for (let t = 0; t < 12; t++) state = wkvWithState(w, u, tf.slice(k, [0, t, 0], [2, 1, 4]), tf.slice(v, [0, t, 0], [2, 1, 4]), state).state;
      for (const key of ['aa', 'bb', 'pp'] as const) {
        expect(maxAbsDiff(state[key].dataSync(), second.state[key].dataSync())).toBeLessThan(1e-5);
      }
    });
  });

  it('does not leak tensors', () => {
    const c = makeCase(1, 4, 3, 0, 1, 61);
    const inputs = tensors(c);
    const before = tf.memory().numTensors;
    tf.tidy(() => gradsOf(wkv, inputs, tf.onesLike(inputs[2])));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(inputs);
  });
});
