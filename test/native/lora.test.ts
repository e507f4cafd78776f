/** Native LoRA forward/backward against the tfjs LoraLinear fused op, dropout masks bit for bit. */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraLinear } from '../../src/lora/lora-linear.js';
import { dropoutMask, hashString, mixSeed, uniformValues } from '../../src/random/rng.js';
import { DenseLinear } from '../../src/models/linear.js';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, nativeMissing, readF32 } from '../helpers/native.js';
import { bitEqual, eachSimd, relativeError, withThreads } from './gemm-helpers.js';

const allocated: number[] = [];
const buf = (v: Float32Array): number => { const id = f32Buffer(v); allocated.push(id); return id; };
const zeros = (n: number): number => { const id = addon().alloc(0, Math.max(1, n)); allocated.push(id); return id; };
afterAll(() => { if (!nativeMissing) for (const id of allocated) addon().free(id); });

describe.skipIf(nativeMissing)('native LoRA dropout mask', () => {
  // h = dropout(ones) I^T is the mask itself (each sum has one nonzero term, so it is exact)
  it.each([[0.1, 12345], [0.5, 0xffffffff], [0.05, 0], [0, 7]])('equals dropoutMask bit for bit (p %f, seed %i)', (p, seed) => {
    const a = addon();
    const rows = 53;
    const inp = 41;
    const eye = new Float32Array(inp * inp);
    for (let i = 0; i < inp; i++) eye[i * inp + i] = 1;
    const h = zeros(rows * inp);
    eachSimd(() => {
      a.loraForward(buf(new Float32Array(rows * inp).fill(1)), rows, inp, 1, inp, buf(eye), buf(new Float32Array(inp)), 1, p, seed, h, zeros(rows));
      expect(bitEqual(readF32(h, rows * inp), dropoutMask(rows * inp, p, seed))).toBe(true);
    });
  });
});

describe.skipIf(nativeMissing)('native LoRA vs the tfjs LoraLinear fused op', () => {
  beforeAll(async () => { await useBackend(); });

  const cases = [
    { rows: 1, inp: 1, out: 1, r: 1 },
    { rows: 37, inp: 129, out: 75, r: 8 },
    { rows: 64, inp: 96, out: 50, r: 16 },
    { rows: 19, inp: 70, out: 131, r: 64 },
  ];
  for (const p of [0, 0.1]) {
    it.each(cases)(`p ${p}: rows $rows, in $inp, out $out, r $r: forward (1e-5), dA, dB, dx (1e-4)`, ({ rows, inp, out, r }) => {
      const a = addon();
      const scaling = 16 / r;
      const seed = 42;
      const step = 3;
      const path = 'blocks.0.att.key';
      const x = uniformValues(rows * inp, -1, 1, 1);
      const A = uniformValues(r * inp, -0.3, 0.3, 2);
      const B = uniformValues(out * r, -0.3, 0.3, 3);
      const P = uniformValues(rows * out, -1, 1, 4);
      // a zero base weight leaves only the adapter's part in y and dx
      const layer = new LoraLinear(new DenseLinear(path, tf.zeros([out, inp])), { r, scaling, dropout: p, seed, a: A, b: B });
      layer.setTraining(true, step);
      const maskSeed = mixSeed(mixSeed(seed >>> 0, hashString(path)), 1, step, 0);
      const xv = tf.variable(tf.tensor2d(x, [rows, inp]));
      let yRef: Float32Array = new Float32Array(0);
      const { grads } = tf.variableGrads(() => {
        const y = layer.apply(xv);
        yRef = y.dataSync() as Float32Array;
        return tf.sum(tf.mul(y, tf.tensor2d(P, [rows, out])));
      }, [xv, layer.loraA, layer.loraB]);
      const dxRef = grads[xv.name]!.dataSync() as Float32Array;
      const dARef = grads[layer.loraA.name]!.dataSync() as Float32Array;
      const dBRef = grads[layer.loraB.name]!.dataSync() as Float32Array;
      tf.dispose([xv, ...Object.values(grads)]);
      layer.dispose();

      const ids = { x: buf(x), A: buf(A), B: buf(B), dy: buf(P), h: zeros(rows * r), y: zeros(rows * out), dA: zeros(r * inp), dB: zeros(out * r), dx: zeros(rows * inp) };
      const bits: Float32Array[][] = [];
      eachSimd((simd) => {
        for (const threads of [1, 2]) {
          withThreads(threads, () => {
            for (const id of [ids.y, ids.dA, ids.dB, ids.dx]) a.fill(id, 0);
            a.loraForward(ids.x, rows, inp, out, r, ids.A, ids.B, scaling, p, maskSeed, ids.h, ids.y);
            const y = readF32(ids.y, rows * out);
            expect(relativeError(y, yRef), `${simd} y`).toBeLessThan(1e-5);
            a.loraBackward(ids.x, ids.h, ids.dy, rows, inp, out, r, ids.A, ids.B, scaling, p, maskSeed, ids.dA, ids.dB, ids.dx);
            const got = [y, readF32(ids.dA, r * inp), readF32(ids.dB, out * r), readF32(ids.dx, rows * inp)];
            expect(relativeError(got[1]!, dARef), `${simd} dA`).toBeLessThan(1e-4);
            expect(relativeError(got[2]!, dBRef), `${simd} dB`).toBeLessThan(1e-4);
            expect(relativeError(got[3]!, dxRef), `${simd} dx`).toBeLessThan(1e-4);
            // the gradients accumulate; dx may be left out
            a.loraBackward(ids.x, ids.h, ids.dy, rows, inp, out, r, ids.A, ids.B, scaling, p, maskSeed, ids.dA, ids.dB, -1);
            expect(relativeError(readF32(ids.dA, r * inp), dARef.map((v) => 2 * v)), `${simd} 2 dA`).toBeLessThan(1e-4);
            expect(relativeError(readF32(ids.dB, out * r), dBRef.map((v) => 2 * v)), `${simd} 2 dB`).toBeLessThan(1e-4);
            expect(bitEqual(readF32(ids.dx, rows * inp), got[3]!)).toBe(true);
            if (simd === 'avx512') bits.push(got);
          });
        }
      });
      if (bits.length === 2) bits[0]!.forEach((v, i) => expect(bitEqual(v, bits[1]![i]!), `threads, output ${i}`).toBe(true));
    });
  }

  it('checks its arguments, naming them', () => {
    const a = addon();
    const [x, A, B, h, y] = [zeros(20), zeros(8), zeros(12), zeros(8), zeros(12)];
    expect(() => a.loraForward(x, 4, 5, 3, 2, A, B, 1, 0, 1, h, y)).toThrow(/^A: .*needs 10/);
    expect(() => a.loraForward(x, 4, 5, 3, 1, A, B, 1, 1, 1, h, y)).toThrow(/^p: /);
    expect(() => a.loraForward(x, 4, 5, 3, 1, A, B, 1, 0.1, -1, h, y)).toThrow(/^seed: /);
    expect(() => a.loraBackward(x, h, y, 4, 5, 3, 2, zeros(10), zeros(6), 1, 0, 1, zeros(10), zeros(5), -1)).toThrow(/^dB: /);
  });
});
