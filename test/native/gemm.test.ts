/** Native GEMM and dense linears against float64 loops and the tfjs DenseLinear op. */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DenseLinear } from '../../src/models/linear.js';
import { gemmReference } from '../../src/engine/reference/products.js';
import { uniformValues } from '../../src/random/rng.js';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, nativeMissing, readF32 } from '../helpers/native.js';
import { bitEqual, eachSimd, relativeError, withEnv, withThreads } from './gemm-helpers.js';

const SHAPES: [number, number, number][] = [[1, 1, 1], [1, 37, 5], [13, 1, 29], [37, 53, 29], [70, 45, 300], [130, 67, 513]];

interface Case { ta: boolean; tb: boolean; M: number; N: number; K: number; lda: number; ldb: number; ldc: number;
  A: Float32Array; B: Float32Array; C0: Float32Array }

function makeCase(ta: boolean, tb: boolean, M: number, N: number, K: number, seed: number): Case {
  // row strides a little above the row length, to test them
  const lda = (ta ? M : K) + 3;
  const ldb = (tb ? K : N) + 2;
  const ldc = N + 1;
  const A = uniformValues((ta ? K : M) * lda, -1, 1, seed);
  const B = uniformValues((tb ? N : K) * ldb, -1, 1, seed + 1);
  const C0 = uniformValues(M * ldc, -1, 1, seed + 2);
  return { ta, tb, M, N, K, lda, ldb, ldc, A, B, C0 };
}

function runNative(c: Case, alpha: number, beta: number, c0 = c.C0): Float32Array {
  const a = addon();
  const ids = [f32Buffer(c.A), f32Buffer(c.B), f32Buffer(c0)];
  a.gemm(c.ta, c.tb, c.M, c.N, c.K, alpha, ids[0]!, c.lda, ids[1]!, c.ldb, beta, ids[2]!, c.ldc);
  const out = readF32(ids[2]!, c0.length);
  ids.forEach((id) => a.free(id));
  return out;
}

/** The [M, N] values of a C with row stride ldc. */
function valid(c: Case, C: Float32Array): Float32Array {
  const out = new Float32Array(c.M * c.N);
  for (let i = 0; i < c.M; i++) out.set(C.subarray(i * c.ldc, i * c.ldc + c.N), i * c.N);
  return out;
}

function runReference(c: Case, alpha: number, beta: number): Float32Array {
  const C = c.C0.slice();
  gemmReference(c.ta, c.tb, c.M, c.N, c.K, alpha, c.A, c.lda, c.B, c.ldb, beta, C, c.ldc);
  return C;
}

describe.skipIf(nativeMissing)('native gemm', () => {
  const cases: Case[] = [];
  let seed = 1;
  for (const [M, N, K] of SHAPES) for (const ta of [false, true]) for (const tb of [false, true]) cases.push(makeCase(ta, tb, M, N, K, seed += 3));
  const refs = cases.map((c) => ({ beta0: runReference(c, 0.75, 0), beta: runReference(c, 1.5, 0.5) }));

  it('matches float64 loops at every SIMD level, every transpose, odd sizes and strides (1e-5)', () => {
    eachSimd((simd) => {
      cases.forEach((c, i) => {
        const what = `${simd} ${c.ta ? 'T' : 'N'}${c.tb ? 'T' : 'N'} ${c.M}x${c.N}x${c.K}`;
        // beta = 0 ignores C's old contents, NaN included
        const nan = c.C0.map(() => NaN);
        expect(relativeError(valid(c, runNative(c, 0.75, 0, nan)), valid(c, refs[i]!.beta0)), what).toBeLessThan(1e-5);
        const withBeta = runNative(c, 1.5, 0.5);
        expect(relativeError(valid(c, withBeta), valid(c, refs[i]!.beta)), what).toBeLessThan(1e-5);
        // the padding between rows is left alone
        expect(bitEqual(withBeta.filter((_v, k) => k % c.ldc >= c.N), c.C0.filter((_v, k) => k % c.ldc >= c.N)), what).toBe(true);
      });
    });
  });

  it('gives the same bits on 1, 2 and 3 threads (tiling never splits a sum)', () => {
    const c = makeCase(false, true, 301, 517, 611, 99);
    withEnv('DITTY_BLAS', 'none', () => {
      const one = withThreads(1, () => runNative(c, 1, 0));
      expect(bitEqual(withThreads(2, () => runNative(c, 1, 0)), one)).toBe(true);
      expect(bitEqual(withThreads(3, () => runNative(c, 1, 0)), one)).toBe(true);
    });
  });

  it('runs through OpenBLAS when DITTY_BLAS names it (skipped when it does not load)', (ctx) => {
    withEnv('DITTY_BLAS', 'libopenblas.so.0', () => {
      const impl = addon().buildInfo().gemm;
      if (!impl.startsWith('openblas')) ctx.skip();
      cases.forEach((c, i) => expect(relativeError(runNative(c, 1.5, 0.5), refs[i]!.beta)).toBeLessThan(1e-5));
    });
    expect(withEnv('DITTY_BLAS', 'none', () => addon().buildInfo().gemm)).toMatch(/^ditty /);
  });

  it('checks its arguments, naming them', () => {
    const a = addon();
    const A = f32Buffer(new Float32Array(12));
    const B = f32Buffer(new Float32Array(12));
    const C = f32Buffer(new Float32Array(9));
    const I = a.alloc(3, 9);
    expect(() => a.gemm(false, false, 3, 3, 5, 1, A, 5, B, 3, 0, C, 3)).toThrow(/^A: .*needs 15/);
    expect(() => a.gemm(false, false, 3, 3, 4, 1, A, 4, B, 4, 0, C, 3)).toThrow(/^B: .*needs 15/);
    expect(() => a.gemm(false, false, 3, 3, 4, 1, A, 3, B, 3, 0, C, 3)).toThrow(/^lda: /);
    expect(() => a.gemm(false, false, 3, 3, 4, 1, A, 4, B, 3, 0, I, 3)).toThrow(/^C: .*i32, expected f32/);
    expect(() => a.gemm(false, false, 3, 3, 2, 1, A, 4, B, 3, 0, C, 2)).toThrow(/^ldc: /);
    for (const id of [A, B, C, I]) a.free(id);
  });
});

describe.skipIf(nativeMissing)('native dense linears', () => {
  beforeAll(async () => { await useBackend(); });

  for (const [rows, inp, out, bias] of [[1, 1, 1, false], [5, 37, 13, true], [67, 129, 75, true], [33, 64, 200, false]] as const) {
    it(`forward and input gradient match DenseLinear (rows ${rows}, in ${inp}, out ${out}, bias ${bias})`, () => {
      const a = addon();
      const w = uniformValues(out * inp, -0.5, 0.5, 7);
      const b = bias ? uniformValues(out, -1, 1, 8) : undefined;
      const x = uniformValues(rows * inp, -1, 1, 9);
      const dy = uniformValues(rows * out, -1, 1, 10);
      const layer = new DenseLinear('m', tf.tensor2d(w, [out, inp]), b && tf.tensor1d(b));
      const yRef = tf.tidy(() => layer.apply(tf.tensor2d(x, [rows, inp])).dataSync() as Float32Array);
      const dxRef = tf.tidy(() => layer.inputGradient(tf.tensor2d(dy, [rows, out])).dataSync() as Float32Array);
      layer.dispose();
      const ids = { w: f32Buffer(w), b: b ? f32Buffer(b) : -1, x: f32Buffer(x), y: a.alloc(0, rows * out), dy: f32Buffer(dy), dx: a.alloc(0, rows * inp) };
      eachSimd(() => {
        a.fill(ids.y, NaN);
        a.denseLinearForward(ids.w, ids.b, out, inp, ids.x, rows, ids.y, false);
        expect(relativeError(readF32(ids.y, rows * out), yRef)).toBeLessThan(1e-5);
        a.denseLinearForward(ids.w, ids.b, out, inp, ids.x, rows, ids.y, true);
        expect(relativeError(readF32(ids.y, rows * out), yRef.map((v) => 2 * v))).toBeLessThan(1e-5);
        a.fill(ids.dx, NaN);
        a.denseLinearInputGrad(ids.w, out, inp, ids.dy, rows, ids.dx, false);
        expect(relativeError(readF32(ids.dx, rows * inp), dxRef)).toBeLessThan(1e-5);
        a.denseLinearInputGrad(ids.w, out, inp, ids.dy, rows, ids.dx, true);
        expect(relativeError(readF32(ids.dx, rows * inp), dxRef.map((v) => 2 * v))).toBeLessThan(1e-5);
      });
      expect(() => a.denseLinearForward(ids.w, ids.b, out, inp + 1, ids.x, rows, ids.y, false)).toThrow(/^W: /);
      expect(() => a.denseLinearInputGrad(ids.w, out, inp, ids.dy, rows + 1, ids.dx, false)).toThrow(/^dy: /);
      for (const id of Object.values(ids)) if (id >= 0) a.free(id);
    });
  }
});
