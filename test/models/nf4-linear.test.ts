import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import { DenseLinear } from '../../src/models/linear.js';
import { dequantizeNf4, quantizeNf4 } from '../../src/quant/nf4.js';
import type { BackendName } from '../../src/engine/backend.js';
import { useBackend } from '../helpers/backend.js';
import { expectClose, matMul, read, uniform } from '../lora/helpers.js';

const BACKENDS: BackendName[] = ['cpu', 'wasm'];

describe.each(BACKENDS)('Nf4Linear on %s', (backend) => {
  beforeAll(async () => { await useBackend(backend); });

  // out 13, in 37: 481 values, so blocks of 64 span rows and the last block is partial.
  const [OUT, IN] = [13, 37];
  const weight = uniform(OUT * IN, -0.5, 0.5, 1);
  const bias = uniform(OUT, -1, 1, 2);

  for (const doubleQuant of [true, false]) {
    it(`matches a dense layer holding the dequantized weight (doubleQuant ${doubleQuant})`, () => {
      const q = Nf4Linear.fromDense('m.proj', weight, [OUT, IN], bias, { blocksize: 64, doubleQuant });
      const deq = dequantizeNf4(q.state);
      const dense = new DenseLinear('m.proj', tf.tensor2d(deq, [OUT, IN]), tf.tensor1d(bias));
      const x = tf.tensor3d(uniform(2 * 5 * IN, -1, 1, 3), [2, 5, IN]);
      const y = q.apply(x);
      expect(y.shape).toEqual([2, 5, OUT]);
      expectClose(read(y), read(dense.apply(x)), 1e-5);
      tf.dispose([x, y]);
      q.dispose();
      dense.dispose();
    });
  }

  it('gives dX = dY · deq(W) and nothing else a gradient', () => {
    const q = Nf4Linear.fromDense('m.proj', weight, [OUT, IN], bias, { blocksize: 64 });
    const deq = dequantizeNf4(q.state);
    const rows = 7;
    const xs = uniform(rows * IN, -1, 1, 4);
    const proj = uniform(rows * OUT, -1, 1, 5);
    const x = tf.tensor2d(xs, [rows, IN]);
    const p = tf.tensor2d(proj, [rows, OUT]);
    const varsBefore = Object.keys(tf.engine().registeredVariables).length;
    const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(q.apply(xx), p)))(x);
    expect(Object.keys(tf.engine().registeredVariables).length).toBe(varsBefore);
    expectClose(read(dx), matMul(proj, deq, rows, OUT, IN), 1e-5, 1e-5);

    // With a trainable variable in the graph, only it gets a gradient (W and the bias are frozen).
    const xv = tf.variable(x.clone(), true);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(q.apply(xv), p)) as tf.Scalar);
    expect(Object.keys(grads)).toEqual([xv.name]);
    expectClose(read(grads[xv.name]!), read(dx), 1e-6);
    tf.dispose([x, p, dx, xv, ...Object.values(grads)]);
    q.dispose();
  });

  it('holds nothing dequantized: no tensors kept by the forward or the backward', () => {
    const [out, inp] = [64, 96];
    const q = Nf4Linear.fromDense('big', uniform(out * inp, -1, 1, 6), [out, inp]);
    const x = tf.tensor3d(uniform(2 * inp, -1, 1, 7), [1, 2, inp]);
    const before = tf.memory();
    const y = q.apply(x);
    expect(tf.memory().numTensors).toBe(before.numTensors + 1);
    expect(tf.memory().numBytes).toBe(before.numBytes + y.size * 4);
    y.dispose();

    let taped = Number.NaN;
    const dx = tf.grad((xx: tf.Tensor) => {
      const m0 = tf.memory().numBytes;
      const yy = q.apply(xx);
      taped = tf.memory().numBytes - m0; // what the tape keeps beyond the output
      return tf.sum(yy);
    })(x);
    expect(taped).toBeLessThan((out * inp * 4) / 4);
    expect(tf.memory().numTensors).toBe(before.numTensors + 1);
    tf.dispose([x, dx]);
    q.dispose();
  });

  it('keeps outputs intact when another layer dequantizes after it', () => {
    const a = Nf4Linear.fromDense('a', uniform(8 * 64, -1, 1, 8), [8, 64]);
    const b = Nf4Linear.fromDense('b', uniform(16 * 64, -1, 1, 9), [16, 64]);
    const x = tf.tensor2d(uniform(3 * 64, -1, 1, 10), [3, 64]);
    const ya = a.apply(x);
    const expected = matMul(read(x), transpose(dequantizeNf4(a.state), 8, 64), 3, 64, 8);
    const yb = b.apply(x);
    expectClose(read(ya), expected, 1e-5, 1e-5);
    tf.dispose([x, ya, yb]);
  });

  it('wraps an existing state (fromState) and checks shapes', () => {
    const state = quantizeNf4(weight, { shape: [OUT, IN] });
    const q = Nf4Linear.fromState('s', state, bias);
    expect([q.outFeatures, q.inFeatures, q.hasBias]).toEqual([OUT, IN, true]);
    expect(() => q.apply(tf.zeros([2, IN + 1]))).toThrow(/s: input \[2, 38\] does not end in 37/);
    expect(() => Nf4Linear.fromState('t', quantizeNf4(weight))).toThrow(/needs a 2-D weight/);
    expect(() => Nf4Linear.fromState('u', state, new Float32Array(OUT + 1))).toThrow(/bias \[14\] does not match/);
    q.dispose();
  });
});

describe('Nf4Linear.bytesHeld', () => {
  it('is about 0.517 bytes per parameter with double quantization', () => {
    for (const [out, inp, expected] of [[768, 768, 305300], [3072, 768, 1218116]] as const) {
      const q = Nf4Linear.fromDense('w', uniform(out * inp, -1, 1, 11), [out, inp]);
      expect(q.bytesHeld()).toBe(expected);
      expect(q.bytesHeld() / (out * inp)).toBeCloseTo(0.517, 2);
      q.dispose();
    }
    const plain = Nf4Linear.fromDense('w', uniform(768 * 768, -1, 1, 12), [768, 768], new Float32Array(768), { doubleQuant: false });
    expect(plain.bytesHeld()).toBe(768 * 768 / 2 + 4 * (768 * 768) / 64 + 4 * 768);
    plain.dispose();
  });
});

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}
