import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import { LoraLinear } from '../../src/lora/lora-linear.js';
import { baseWeightOf, mergedWeight, mergeLoraLayer } from '../../src/lora/merge.js';
import { DenseLinear } from '../../src/models/linear.js';
import { dequantizeNf4 } from '../../src/quant/nf4.js';
import { useBackend } from '../helpers/backend.js';
import { expectClose, read, uniform } from './helpers.js';

beforeAll(async () => { await useBackend(); });

describe('merge', () => {
  it('computes W + scaling * B A', () => {
    const w = Float32Array.of(1, 2, 3, 4, 5, 6); // [2, 3]
    const a = Float32Array.of(1, 0, 2); // [1, 3]
    const b = Float32Array.of(3, -1); // [2, 1]
    expect(Array.from(mergedWeight(w, [2, 3], a, b, 0.5))).toEqual([2.5, 2, 6, 3.5, 5, 5]);
    expect(Array.from(w)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => mergedWeight(w, [2, 3], Float32Array.of(1, 2), b, 1)).toThrow(/lora_A has 2 values, not a multiple of in = 3/);
    expect(() => mergedWeight(w, [2, 3], a, Float32Array.of(1), 1)).toThrow(/lora_B has 1 values, expected \[2, 1\]/);
  });

  it('gives a dense layer the outputs of the adapted one (odd sizes, bias)', () => {
    const [out, inp, r] = [13, 37, 3];
    const w = uniform(out * inp, -0.5, 0.5, 1);
    const bias = uniform(out, -1, 1, 2);
    const base = new DenseLinear('m.key', tf.tensor2d(w, [out, inp]), tf.tensor1d(bias));
    const lora = new LoraLinear(base, { r, scaling: 16 / r, seed: 3, b: uniform(out * r, -0.3, 0.3, 4) });
    const merged = new DenseLinear('m.key', tf.tensor2d(mergeLoraLayer(lora), [out, inp]), tf.tensor1d(bias));
    const x = tf.tensor3d(uniform(2 * 4 * inp, -1, 1, 5), [2, 4, inp]);
    expectClose(read(merged.apply(x)), read(lora.apply(x)), 1e-5, 1e-5);
    tf.dispose(x);
    lora.dispose();
    merged.dispose();
  });

  it('merges onto the dequantized NF4 weight, or onto the original weight when given', () => {
    const [out, inp, r] = [13, 37, 3];
    const w = uniform(out * inp, -0.5, 0.5, 6);
    const q = Nf4Linear.fromDense('m.value', w, [out, inp]);
    const lora = new LoraLinear(q, { r, scaling: 2, seed: 3, b: uniform(out * r, -0.3, 0.3, 7) });
    const { a, b } = lora.weights();
    expect(baseWeightOf(q)).toEqual(dequantizeNf4(q.state));
    expect(mergeLoraLayer(lora)).toEqual(mergedWeight(dequantizeNf4(q.state), [out, inp], a, b, 2));
    expect(mergeLoraLayer(lora, w)).toEqual(mergedWeight(w, [out, inp], a, b, 2));
    const x = tf.tensor2d(uniform(3 * inp, -1, 1, 8), [3, inp]);
    const dense = new DenseLinear('m.value', tf.tensor2d(mergeLoraLayer(lora), [out, inp]));
    expectClose(read(dense.apply(x)), read(lora.apply(x)), 1e-5, 1e-5);
    expect(() => baseWeightOf({ path: 'odd', inFeatures: 1, outFeatures: 1, hasBias: false, apply: (t) => t, dispose: () => undefined }))
      .toThrow(/odd: cannot read the weight/);
    tf.dispose(x);
    lora.dispose();
    dense.dispose();
  });
});
