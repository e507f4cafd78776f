/** Native head + cross-entropy against src/engine/cross-entropy.ts headCrossEntropy. */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headCrossEntropy } from '../../src/engine/cross-entropy.js';
import { headCrossEntropyReference } from '../../src/engine/reference/products.js';
import { uniformValues } from '../../src/random/rng.js';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, nativeMissing, readF32 } from '../helpers/native.js';
import { bitEqual, eachSimd, relativeError, withThreads } from './gemm-helpers.js';

const allocated: number[] = [];
const buf = (v: Float32Array): number => { const id = f32Buffer(v); allocated.push(id); return id; };
const i32 = (v: Int32Array): number => { const id = addon().alloc(3, v.length); addon().write(id, v, 0); allocated.push(id); return id; };
const zeros = (n: number): number => { const id = addon().alloc(0, Math.max(1, n)); allocated.push(id); return id; };
afterAll(() => { if (!nativeMissing) for (const id of allocated) addon().free(id); });

describe.skipIf(nativeMissing)('native headCrossEntropy', () => {
  beforeAll(async () => { await useBackend(); });

  const cases = [
    { N: 1, C: 1, V: 2, chunk: 1 }, // tfjs oneHot needs V >= 2
    { N: 37, C: 29, V: 301, chunk: 8 },
    { N: 70, C: 64, V: 1031, chunk: 128 },
    { N: 19, C: 96, V: 2053, chunk: 5 },
  ];
  it.each(cases)('N $N, C $C, V $V, chunk $chunk: loss sum (1e-5) and dhidden (1e-4), masked rows skipped', ({ N, C, V, chunk }) => {
    const a = addon();
    const hidden = uniformValues(N * C, -2, 2, 1);
    const head = uniformValues(V * C, -1, 1, 2);
    const targets = Int32Array.from(uniformValues(N, 0, V, 3), (v) => Math.min(V - 1, Math.floor(v)));
    // a third of the rows masked out, others weighted
    const weights = Float32Array.from(uniformValues(N, 0, 3, 4), (v, i) => (i % 3 === 1 && N > 1 ? 0 : v));
    const normalizer = 7;
    const h = tf.tensor2d(hidden, [N, C]);
    const w = tf.tensor2d(head, [V, C]);
    let lossRef = 0;
    const dRef = tf.grad((x: tf.Tensor) => {
      const l = headCrossEntropy(x as tf.Tensor2D, w, targets, weights, normalizer, 3);
      lossRef = l.dataSync()[0]! * normalizer;
      return l;
    })(h).dataSync() as Float32Array;
    tf.dispose([h, w]);

    const ids = { h: buf(hidden), head: buf(head), t: i32(targets), w: buf(weights), dh: zeros(N * C) };
    const seen: Float32Array[] = [];
    const losses: number[] = [];
    eachSimd((simd) => {
      for (const threads of [1, 2]) {
        withThreads(threads, () => {
          a.fill(ids.dh, NaN);
          const loss = a.headCrossEntropy(ids.h, N, C, ids.head, V, ids.t, ids.w, 1 / normalizer, ids.dh, false, chunk);
          expect(Math.abs(loss - lossRef) / (Math.abs(lossRef) + 1e-6), `${simd} loss ${loss} vs ${lossRef}`).toBeLessThan(1e-5);
          const dh = readF32(ids.dh, N * C);
          expect(relativeError(dh, dRef), `${simd} dhidden`).toBeLessThan(1e-4);
          // accumulate adds; no dhidden gives the same loss
          a.headCrossEntropy(ids.h, N, C, ids.head, V, ids.t, ids.w, 1 / normalizer, ids.dh, true, chunk);
          expect(relativeError(readF32(ids.dh, N * C), dRef.map((v) => 2 * v)), `${simd} accumulate`).toBeLessThan(1e-4);
          expect(a.headCrossEntropy(ids.h, N, C, ids.head, V, ids.t, ids.w, 1, -1, false, chunk)).toBe(loss);
          if (simd === 'avx512') {
            seen.push(dh);
            losses.push(loss);
          }
        });
      }
    });
    // the same bits on 1 and 2 threads
    if (seen.length === 2) {
      expect(bitEqual(seen[0]!, seen[1]!)).toBe(true);
      expect(losses[0]).toBe(losses[1]);
    }
  });

  it('keeps the gradient of confident rows (p_t near 1) accurate: float64 reference at 1e-4', () => {
    const a = addon();
    const [N, C, V] = [9, 16, 257];
    const hidden = uniformValues(N * C, -1, 1, 21);
    const head = uniformValues(V * C, -1, 1, 22);
    // each target is its row's largest logit, made dominant by scaling the row: 1 - p_t ~ 1e-3 .. 1e-6
    const targets = new Int32Array(N);
    for (let i = 0; i < N; i++) {
      let best = 0;
      let bestZ = -Infinity;
      for (let v = 0; v < V; v++) {
        let z = 0;
        for (let c = 0; c < C; c++) z += hidden[i * C + c]! * head[v * C + c]!;
        if (z > bestZ) [best, bestZ] = [v, z];
      }
      targets[i] = best;
      for (let c = 0; c < C; c++) hidden[i * C + c] *= 4 + i;
    }
    const weights = new Float32Array(N).fill(1);
    const ref = headCrossEntropyReference(hidden, N, C, head, V, targets, weights, 0.5);
    const dh = zeros(N * C);
    eachSimd((simd) => {
      a.headCrossEntropy(buf(hidden), N, C, buf(head), V, i32(targets), buf(weights), 0.5, dh, false, 4);
      expect(relativeError(readF32(dh, N * C), ref.dhidden), simd).toBeLessThan(1e-4);
    });
  });

  it('is 0 with every row masked, zeroing dhidden unless accumulating', () => {
    const a = addon();
    const dh = buf(new Float32Array(6).fill(5));
    const args = [buf(new Float32Array(6).fill(1)), 2, 3, buf(new Float32Array(12)), 4, i32(Int32Array.of(1, 2)), buf(new Float32Array(2))] as const;
    expect(a.headCrossEntropy(...args, 1, dh, true, 4)).toBe(0);
    expect(Array.from(readF32(dh, 6))).toEqual([5, 5, 5, 5, 5, 5]);
    expect(a.headCrossEntropy(...args, 1, dh, false, 4)).toBe(0);
    expect(Array.from(readF32(dh, 6))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('checks its arguments, naming them', () => {
    const a = addon();
    const h = buf(new Float32Array(6));
    const head = buf(new Float32Array(12));
    const w = buf(Float32Array.of(1, 1));
    expect(() => a.headCrossEntropy(h, 2, 3, head, 4, i32(Int32Array.of(0, 4)), w, 1, -1, false, 4)).toThrow(/^targets: targets\[1\] = 4/);
    expect(() => a.headCrossEntropy(h, 2, 3, head, 5, i32(Int32Array.of(0, 1)), w, 1, -1, false, 4)).toThrow(/^head: /);
    expect(() => a.headCrossEntropy(h, 2, 3, head, 4, buf(Float32Array.of(0, 1)), w, 1, -1, false, 4)).toThrow(/^targets: .*f32, expected i32/);
    expect(() => a.headCrossEntropy(h, 2, 3, head, 4, i32(Int32Array.of(0, 1)), w, 1, zeros(5), false, 4)).toThrow(/^dhidden: /);
    expect(() => a.headCrossEntropy(h, 2, 3, head, 4, i32(Int32Array.of(0, 1)), w, 1, -1, false, 0)).toThrow(/^chunk: /);
  });
});
