/**
 * The native shared kernels against the tfjs engine: embedding (tf.gather), layer norm
 * (src/engine/fused.ts frozenLayerNorm, forward and input gradient), add / addInplace /
 * scaleInplace and sumSquares (plain float loops), on every SIMD path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { frozenLayerNorm } from '../../src/engine/fused.js';
import { layerNormBackwardReference, layerNormReference } from '../../src/engine/reference/common.js';
import { addon, f32Buffer, readF32 } from '../helpers/native.js';
import { uniform } from '../helpers/random.js';
import { activeSimd, bufferPool, describeKernels, forEachSimdPath, i32Buffer, relErr } from './common-simd.js';

const pool = bufferPool();
const { keep, upload, zeros } = pool;
const data = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;

/** Bitwise equality without a diff of the whole array (which is slow for long ones). */
function expectSame(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  const i = got.findIndex((v, j) => !Object.is(v, want[j]));
  expect(i < 0 ? 'equal' : `first difference at ${i}: ${got[i]} vs ${want[i]}`).toBe('equal');
}

describeKernels('native shared kernels', pool, () => {
  forEachSimdPath((path) => {
    it('reports the path it runs (a cap only narrows it)', () => {
      const simd = activeSimd();
      if (path === 'portable') expect(simd).toBe('portable');
      if (path === 'avx2') expect(['avx2', 'portable']).toContain(simd);
    });

    it('embeddingForward gathers rows', () => {
      const a = addon();
      const V = 23, C = 37, n = 11;
      const table = uniform(V * C, -1, 1, 3);
      const ids = Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % V);
      const out = zeros(n * C);
      a.embeddingForward(keep(i32Buffer(ids)), n, upload(table), V, C, out);
      const ref = tf.tidy(() => data(tf.gather(tf.tensor2d(table, [V, C]), tf.tensor1d(ids, 'int32'))));
      expectSame(readF32(out, n * C), ref);
    });

    for (const [N, C, offset] of [[1, 1, 0], [7, 45, 0], [33, 768, 0], [5, 1023, 100]] as const) {
      it(`layer norm forward and input gradient, N=${N} C=${C}${offset ? `, mean ${offset}` : ''}`, () => {
        const a = addon();
        const eps = 1e-5;
        const x = uniform(N * C, offset - 3, offset + 3, N + C);
        const w = uniform(C, 0.5, 1.5, 2), b = uniform(C, -0.5, 0.5, 3), dy = uniform(N * C, -1, 1, 4);
        const [xi, wi, bi] = [upload(x), upload(w), upload(b)];
        const out = zeros(N * C), mean = zeros(N), rstd = zeros(N);
        a.layernormForward(xi, wi, bi, N, C, eps, out, mean, rstd);
        const init = uniform(N * C, -1, 1, 9);
        const dx = upload(init), dx2 = zeros(N * C);
        a.layernormBackward(upload(dy), xi, wi, mean, rstd, N, C, dx, true);
        a.layernormBackward(keep(f32Buffer(dy)), xi, wi, mean, rstd, N, C, dx2, false);
        const [wt, bt, xt, dyt] = [tf.tensor1d(w), tf.tensor1d(b), tf.tensor2d(x, [N, C]), tf.tensor2d(dy, [N, C])];
        const ln = (t: tf.Tensor) => frozenLayerNorm(t, wt, bt, eps);
        const refOut = tf.tidy(() => data(ln(xt)));
        const refDx = tf.tidy(() => data(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ln(t), dyt)))(xt)));
        tf.dispose([wt, bt, xt, dyt]);
        // float64 references: the kernel sums its moments in double. Outputs are xhat w + b with
        // terms of size ~1, so errors are relative to max(|out|, 0.01): a float rounding of b
        // where xhat w + b cancels to ~0 is no error of the kernel's.
        const ref64 = Float32Array.from(layerNormReference(x, w, b, N, C, Math.fround(eps)));
        const refDx64 = Float32Array.from(layerNormBackwardReference(dy, x, w, N, C, Math.fround(eps)));
        expect(relErr(readF32(out, N * C), ref64, 1e-2)).toBeLessThan(1e-5);
        expect(relErr(readF32(dx2, N * C), refDx64, 1e-3)).toBeLessThan(1e-4);
        // in place: dx may be dy's own buffer
        const inPlace = upload(dy);
        a.layernormBackward(inPlace, xi, wi, mean, rstd, N, C, inPlace, false);
        expect(readF32(inPlace, N * C)).toEqual(readF32(dx2, N * C));
        const accumulated = Float32Array.from(refDx64, (g, i) => g + init[i]!);
        expect(relErr(readF32(dx, N * C), accumulated, 1e-3)).toBeLessThan(1e-4);
        // the tfjs op (frozenLayerNorm) computes the same function, with its moments summed in
        // float32: it is held to the float64 reference only as well as that allows
        const tfjsBound = (offset ? 0.1 : 1e-3);
        expect(relErr(refOut, ref64, 1e-3)).toBeLessThan(tfjsBound);
        expect(relErr(readF32(out, N * C), refOut, 1e-3)).toBeLessThan(tfjsBound);
        expect(relErr(readF32(dx2, N * C), refDx, 1e-3)).toBeLessThan(tfjsBound);
        // saved statistics: the row mean and 1 / sqrt(var + eps) in float64
        const m = readF32(mean, N), r = readF32(rstd, N);
        for (let row = 0; row < N; row++) {
          let s = 0, ss = 0;
          for (let c = 0; c < C; c++) s += x[row * C + c]!;
          const mu = s / C;
          for (let c = 0; c < C; c++) ss += (x[row * C + c]! - mu) ** 2;
          expect(m[row]).toBe(Math.fround(mu));
          expect(Math.abs(r[row]! - 1 / Math.sqrt(ss / C + Math.fround(eps))) * Math.sqrt(ss / C + eps)).toBeLessThan(1e-6);
        }
      });
    }

    it('add, addInplace and scaleInplace (n = 1, 37, 70001; out aliasing a)', () => {
      const a = addon();
      for (const n of [1, 37, 70001]) {
        const x = uniform(n, -5, 5, n), y = uniform(n, -5, 5, n + 1);
        const [xi, yi, out] = [upload(x), upload(y), zeros(n)];
        a.add(xi, yi, out, n);
        expectSame(readF32(out, n), Float32Array.from(x, (v, i) => v + y[i]!));
        a.addInplace(out, xi, n);
        expectSame(readF32(out, n), Float32Array.from(x, (v, i) => Math.fround(v + y[i]!) + v));
        a.scaleInplace(out, n, 0.3);
        const s = Math.fround(0.3);
        expectSame(readF32(out, n), Float32Array.from(x, (v, i) => Math.fround(Math.fround(v + y[i]!) + v) * s));
        a.add(xi, yi, xi, n);
        expectSame(readF32(xi, n), Float32Array.from(x, (v, i) => v + y[i]!));
      }
    });

    it('sumSquares in double (n = 0, 1, 15, 100003)', () => {
      const a = addon();
      for (const n of [0, 1, 15, 100003]) {
        const x = uniform(n, -2, 2, n + 5);
        let ref = 0;
        for (const v of x) ref += v * v;
        const got = a.sumSquares(upload(x), n);
        expect(Math.abs(got - ref)).toBeLessThanOrEqual(1e-12 * Math.max(ref, 1));
      }
    });
  });

  it('sums and layer norm statistics are the same bits on every path and thread count', () => {
    const a = addon();
    const n = 100003, N = 9, C = 1023;
    const x = upload(uniform(n, -2, 2, 1));
    const xs = upload(uniform(N * C, 5, 9, 2)), w = upload(uniform(C, 0.5, 1.5, 3)), b = upload(uniform(C, -1, 1, 4));
    const saved = process.env['DITTY_SIMD'], threads = a.threads();
    const run = (): number[] => {
      const mean = zeros(N), rstd = zeros(N), out = zeros(N * C);
      a.layernormForward(xs, w, b, N, C, 1e-5, out, mean, rstd);
      return [a.sumSquares(x, n), ...readF32(mean, N), ...readF32(rstd, N)];
    };
    try {
      const results: number[][] = [];
      for (const path of ['portable', 'avx2', 'avx512']) {
        process.env['DITTY_SIMD'] = path;
        for (const t of [1, 3]) {
          a.setThreads(t);
          results.push(run());
        }
      }
      for (const r of results) expect(r).toEqual(results[0]);
    } finally {
      a.setThreads(threads);
      if (saved === undefined) delete process.env['DITTY_SIMD'];
      else process.env['DITTY_SIMD'] = saved;
    }
  });

  it('argument checks name the argument', () => {
    const a = addon();
    const small = zeros(5), big = zeros(100);
    const ids = keep(i32Buffer(Int32Array.from([0, 1, 7, 2])));
    expect(() => a.embeddingForward(ids, 4, big, 5, 20, big)).toThrow(/^ids: ids\[2\] = 7 is outside \[0, 5\)/);
    expect(() => a.embeddingForward(keep(i32Buffer(Int32Array.from([-1]))), 1, big, 5, 20, big)).toThrow(/^ids: ids\[0\] = -1 is outside/);
    expect(() => a.embeddingForward(big, 4, big, 5, 20, big)).toThrow(/^ids: buffer \d+ holds f32, expected i32/);
    expect(() => a.embeddingForward(ids, 4, big, 5, 20, small)).toThrow(/^out: buffer \d+ has 5 elements, the call needs 80/);
    expect(() => a.embeddingForward(ids, 4, small, 5, 20, big)).toThrow(/^table: /);
    expect(() => a.layernormForward(big, small, big, 10, 10, 1e-5, big, big, big)).toThrow(/^w: /);
    expect(() => a.layernormForward(big, big, big, 10, 10, -1, big, big, big)).toThrow(/^eps: /);
    expect(() => a.layernormForward(big, big, big, 10, 10, 1e-5, big, big, small)).toThrow(/^rstd: /);
    expect(() => a.layernormBackward(big, big, big, big, big, 10, 10, ids, false)).toThrow(/^dx: .*i32/);
    expect(() => a.layernormBackward(big, big, big, big, big, 10, 10, big, 1 as unknown as boolean)).toThrow(/^accumulate: expected a boolean/);
    expect(() => a.add(big, small, big, 10)).toThrow(/^b: /);
    expect(() => a.addInplace(small, big, 10)).toThrow(/^y: /);
    expect(() => a.scaleInplace(big, 101, 2)).toThrow(/^x: /);
    expect(() => a.sumSquares(big, 1.5)).toThrow(/^n: expected an integer/);
    expect(() => a.add(big, big, 9999, 10)).toThrow(/^out: /);
  });

  it('buffer write and read stay inside the buffer and say so in one line', () => {
    const a = addon();
    const b = zeros(5);
    a.write(b, Float32Array.from([1, 2]), 3);
    const got = new Float32Array(3);
    a.read(b, got, 2);
    expect(Array.from(got)).toEqual([0, 1, 2]);
    expect(() => a.write(b, new Float32Array(3), 3)).toThrow(/^write: 3 elements at 3 do not fit a buffer of 5$/);
    expect(() => a.write(b, new Float32Array(0), 6)).toThrow(/^write: 0 elements at 6 do not fit a buffer of 5$/);
    expect(() => a.read(b, new Float32Array(6), 0)).toThrow(/^read: 6 elements at 0 are outside a buffer of 5$/);
    expect(() => a.read(b, new Float32Array(1), 5)).toThrow(/^read: 1 elements at 5 are outside a buffer of 5$/);
    expect(() => a.read(b, new Int32Array(1), 0)).toThrow(/^data: a f32 buffer needs a Float32Array$/);
  });
});
