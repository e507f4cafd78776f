/**
 * The native RWKV-4 kernels against the tfjs engine's ops: WKV (src/engine/wkv.ts), token shift +
 * mix (src/models/ops.ts shiftTokens and rwkv4.ts's mix), the sigmoid gate and relu^2
 * (src/engine/fused.ts), on every SIMD path, with sizes that are no multiple of any vector width.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { reluSquared } from '../../src/engine/fused.js';
import { WKV_EMPTY_PP, wkv, wkvWithState } from '../../src/engine/wkv.js';
import { shiftTokens } from '../../src/models/ops.js';
import { addon, readF32 } from '../helpers/native.js';
import { uniform } from '../helpers/random.js';
import { bufferPool, describeKernels, forEachSimdPath, relErr } from './common-simd.js';

const pool = bufferPool();
const { keep, upload, zeros } = pool;
const data = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;

interface WkvCase {
  readonly B: number;
  readonly T: number;
  readonly C: number;
  readonly kMax: number;
}
const WKV_CASES: WkvCase[] = [
  { B: 1, T: 1, C: 1, kMax: 1 },
  { B: 2, T: 300, C: 37, kMax: 1 },
  { B: 3, T: 41, C: 21, kMax: 60 },
  { B: 1, T: 300, C: 19, kMax: 60 },
  // more channels than one task's group (256 forward, 64 backward), with a partial last group
  { B: 2, T: 23, C: 301, kMax: 8 },
];

/**
 * The kernel runs in float32 as RWKV-LM's does; wkv.ts runs in float64. The exponents (pp, u + k)
 * carry an absolute rounding error of ulp(|k|) / 2 per operation, which becomes a relative error of
 * the weights: ~2e-6 per step at |k| = 60 (ulp(60) = 3.8e-6), so large keys get a looser bound.
 */
function forwardTolerance(c: WkvCase): number {
  return c.kMax > 8 ? 4e-5 : 1e-5;
}

function wkvInputs(c: WkvCase, seed: number) {
  const n = c.B * c.T * c.C;
  return {
    decay: uniform(c.C, -1, 2, seed), // w = -exp(decay) in [-7.4, -0.37)
    first: uniform(c.C, -1, 1, seed + 1),
    k: uniform(n, -c.kMax, c.kMax, seed + 2),
    v: uniform(n, -2, 2, seed + 3),
    dy: uniform(n, -1, 1, seed + 4),
  };
}

describeKernels('native RWKV-4 kernels', pool, () => {
  forEachSimdPath((path) => {
    for (const c of WKV_CASES) {
      const label = `B=${c.B} T=${c.T} C=${c.C} |k|<${c.kMax}`;
      it(`wkvForward from the empty state and from a given state, ${label}`, () => {
        const a = addon();
        const x = wkvInputs(c, 11 + c.T);
        const n = c.B * c.T * c.C;
        const [decay, first, k, v] = [upload(x.decay), upload(x.first), upload(x.k), upload(x.v)];
        const y = zeros(n);
        a.wkvForward(decay, first, k, v, c.B, c.T, c.C, y, -1);
        const ref = tf.tidy(() => {
          const w = tf.neg(tf.exp(tf.tensor1d(x.decay))) as tf.Tensor1D;
          return data(wkv(w, tf.tensor1d(x.first), tf.tensor3d(x.k, [c.B, c.T, c.C]), tf.tensor3d(x.v, [c.B, c.T, c.C])));
        });
        // values are weighted means of v in [-2, 2]: errors are measured against a floor of 1
        if (process.env['DITTY_TEST_LOG_ERRORS']) console.log(label, path, 'y', relErr(readF32(y, n), ref, 1));
        expect(relErr(readF32(y, n), ref, 1)).toBeLessThan(forwardTolerance(c));

        // a state carried over from an earlier chunk: the first T0 positions, then the rest
        const T0 = Math.max(1, c.T >> 1), T1 = c.T - T0;
        const state = zeros(3 * c.B * c.C);
        const pp = new Float32Array(c.B * c.C).fill(WKV_EMPTY_PP);
        a.write(state, pp, 2 * c.B * c.C);
        const part = (t0: number, len: number, src: Float32Array): Float32Array => {
          const out = new Float32Array(c.B * len * c.C);
          for (let b = 0; b < c.B; b++) out.set(src.subarray((b * c.T + t0) * c.C, (b * c.T + t0 + len) * c.C), b * len * c.C);
          return out;
        };
        const run = (t0: number, len: number): Float32Array => {
          if (len === 0) return new Float32Array(0);
          const [kp, vp, yp] = [upload(part(t0, len, x.k)), upload(part(t0, len, x.v)), zeros(c.B * len * c.C)];
          a.wkvForward(decay, first, kp, vp, c.B, len, c.C, yp, state);
          return readF32(yp, c.B * len * c.C);
        };
        run(0, T0);
        const y1 = run(T0, T1);
        const ref1 = tf.tidy(() => {
          const w = tf.neg(tf.exp(tf.tensor1d(x.decay))) as tf.Tensor1D;
          const u = tf.tensor1d(x.first);
          const shape = (len: number): [number, number, number] => [c.B, len, c.C];
          const s0 = wkvWithState(w, u, tf.tensor3d(part(0, T0, x.k), shape(T0)), tf.tensor3d(part(0, T0, x.v), shape(T0)), {
            aa: tf.zeros([c.B, c.C]), bb: tf.zeros([c.B, c.C]), pp: tf.fill([c.B, c.C], WKV_EMPTY_PP),
          });
          if (T1 === 0) return { y: new Float32Array(0), state: [s0.state.aa, s0.state.bb, s0.state.pp].map(data) };
          const s1 = wkvWithState(w, u, tf.tensor3d(part(T0, T1, x.k), shape(T1)), tf.tensor3d(part(T0, T1, x.v), shape(T1)), s0.state);
          return { y: data(s1.y), state: [s1.state.aa, s1.state.bb, s1.state.pp].map(data) };
        });
        expect(relErr(y1, ref1.y, 1)).toBeLessThan(forwardTolerance(c));
        const st = readF32(state, 3 * c.B * c.C);
        const BC = c.B * c.C;
        // aa, bb relative to their own scale (bb >= 1 after a token); pp is an exponent
        expect(relErr(st.subarray(0, BC), ref1.state[0]!, 1)).toBeLessThan(forwardTolerance(c));
        expect(relErr(st.subarray(BC, 2 * BC), ref1.state[1]!, 1)).toBeLessThan(forwardTolerance(c));
        expect(relErr(st.subarray(2 * BC), ref1.state[2]!, 1)).toBeLessThan(1e-6);
      });

      it(`wkvBackward matches the gradient of wkv.ts, ${label}`, () => {
        const a = addon();
        const x = wkvInputs(c, 29 + c.C);
        const n = c.B * c.T * c.C;
        const dk = zeros(n), dv = zeros(n);
        a.wkvBackward(upload(x.decay), upload(x.first), upload(x.k), upload(x.v), upload(x.dy), c.B, c.T, c.C, dk, dv);
        const [gk, gv] = tf.tidy(() => {
          const w = tf.neg(tf.exp(tf.tensor1d(x.decay))) as tf.Tensor1D;
          const u = tf.tensor1d(x.first);
          const dy = tf.tensor3d(x.dy, [c.B, c.T, c.C]);
          const g = tf.grads((kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(wkv(w, u, kk as tf.Tensor3D, vv as tf.Tensor3D), dy)));
          return g([tf.tensor3d(x.k, [c.B, c.T, c.C]), tf.tensor3d(x.v, [c.B, c.T, c.C])]).map(data);
        });
        if (process.env['DITTY_TEST_LOG_ERRORS']) console.log(label, path, 'dk dv', relErr(readF32(dk, n), gk!, 1), relErr(readF32(dv, n), gv!, 1));
        expect(relErr(readF32(dk, n), gk!, 1)).toBeLessThan(1e-4);
        expect(relErr(readF32(dv, n), gv!, 1)).toBeLessThan(1e-4);
      });
    }

    for (const [B, T, C, nMix, withState] of [[1, 1, 1, 2, false], [2, 7, 45, 3, true], [3, 5, 19, 2, true], [1, 9, 33, 3, false]] as const) {
      it(`timeMix forward and backward, B=${B} T=${T} C=${C} ${nMix} mixes${withState ? ', with state' : ''}`, () => {
        const a = addon();
        const n = B * T * C;
        const x = uniform(n, -3, 3, 5 + C);
        const prev = uniform(B * C, -3, 3, 6 + C);
        const mixes = Array.from({ length: nMix }, (_, j) => uniform(C, 0, 1, 40 + j));
        const douts = Array.from({ length: nMix }, (_, j) => uniform(n, -1, 1, 50 + j));
        const outs = mixes.map(() => zeros(n));
        const mixIds = mixes.map(upload);
        a.timeMixForward(upload(x), withState ? upload(prev) : -1, B, T, C, mixIds, outs);
        const mixOf = (z: tf.Tensor3D, m: Float32Array, state?: tf.Tensor2D): tf.Tensor => {
          const shifted = shiftTokens(z, state);
          const mt = tf.tensor3d(m, [1, 1, C]);
          return tf.add(tf.mul(z, mt), tf.mul(shifted, tf.sub(1, mt)));
        };
        const refs = tf.tidy(() => mixes.map((m) => data(mixOf(tf.tensor3d(x, [B, T, C]), m, withState ? tf.tensor2d(prev, [B, C]) : undefined))));
        // the same float operations in the same order: equal to the bit
        outs.forEach((id, j) => expect(readF32(id, n)).toEqual(refs[j]));

        const dx = upload(uniform(n, -1, 1, 77));
        a.timeMixBackward(douts.map(upload), mixIds, B, T, C, dx, true);
        const ref = tf.tidy(() => {
          const f = (z: tf.Tensor) => tf.addN(mixes.map((m, j) => tf.sum(tf.mul(mixOf(z as tf.Tensor3D, m), tf.tensor3d(douts[j]!, [B, T, C])))));
          return data(tf.add(tf.grad(f)(tf.tensor3d(x, [B, T, C])), tf.tensor3d(uniform(n, -1, 1, 77), [B, T, C])));
        });
        expect(relErr(readF32(dx, n), ref, 1e-3)).toBeLessThan(1e-4);
      });
    }

    it('sigmoid gate and relu^2, forward and backward (n = 1 and n = 1037)', () => {
      const a = addon();
      for (const n of [1, 1037]) {
        const av = uniform(n, -30, 30, n), yv = uniform(n, -2, 2, n + 1), g = uniform(n, -1, 1, n + 2);
        const [ai, yi, gi] = [upload(av), upload(yv), upload(g)];
        const out = zeros(n), da = zeros(n), dy = zeros(n);
        a.sigmoidGateForward(ai, yi, out, n);
        a.sigmoidGateBackward(ai, yi, gi, da, dy, n);
        const [refOut, refDa, refDy] = tf.tidy(() => {
          const f = (p: tf.Tensor, q: tf.Tensor) => tf.mul(tf.sigmoid(p), q);
          const grads = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(f(p, q), tf.tensor1d(g))))([tf.tensor1d(av), tf.tensor1d(yv)]);
          return [data(f(tf.tensor1d(av), tf.tensor1d(yv))), data(grads[0]!), data(grads[1]!)];
        });
        expect(relErr(readF32(out, n), refOut!, 1e-6)).toBeLessThan(1e-5);
        // s (1 - s) loses all relative precision where s rounds near 1 in float (in tfjs too):
        // measured against the gradient's scale instead (|dout y| / 4 is at most 0.5)
        expect(relErr(readF32(da, n), refDa!, 1e-2)).toBeLessThan(1e-4);
        expect(relErr(readF32(dy, n), refDy!, 1e-6)).toBeLessThan(1e-4);
        // either gradient may be left out
        const da2 = zeros(n);
        a.sigmoidGateBackward(ai, yi, gi, da2, -1, n);
        expect(readF32(da2, n)).toEqual(readF32(da, n));

        const r2 = zeros(n), dr = zeros(n);
        a.reluSquareForward(yi, r2, n);
        a.reluSquareBackward(yi, gi, dr, n);
        const [refR, refDr] = tf.tidy(() => [
          data(reluSquared(tf.tensor1d(yv))),
          data(tf.grad((p: tf.Tensor) => tf.sum(tf.mul(reluSquared(p), tf.tensor1d(g))))(tf.tensor1d(yv))),
        ]);
        expect(readF32(r2, n)).toEqual(refR);
        expect(readF32(dr, n)).toEqual(refDr);
      }
    });
  });

  it('results do not depend on the thread count', () => {
    const a = addon();
    // C = 301: the forward's channel group (256 for 1 thread, 64 for 3) changes with the thread count
    const c = { B: 2, T: 50, C: 301, kMax: 60 };
    const x = wkvInputs(c, 3);
    const n = c.B * c.T * c.C;
    const ids = [upload(x.decay), upload(x.first), upload(x.k), upload(x.v), upload(x.dy)] as const;
    const run = (): Float32Array[] => {
      const [y, dk, dv] = [zeros(n), zeros(n), zeros(n)];
      a.wkvForward(ids[0], ids[1], ids[2], ids[3], c.B, c.T, c.C, y, -1);
      a.wkvBackward(ids[0], ids[1], ids[2], ids[3], ids[4], c.B, c.T, c.C, dk, dv);
      return [readF32(y, n), readF32(dk, n), readF32(dv, n)];
    };
    const threads = a.threads();
    try {
      a.setThreads(1);
      const one = run();
      a.setThreads(3);
      expect(run()).toEqual(one);
    } finally {
      a.setThreads(threads);
    }
  });

  it('argument checks name the argument', () => {
    const a = addon();
    const small = zeros(5), big = zeros(100);
    const ints = keep(a.alloc(3, 100));
    expect(() => a.wkvForward(big, big, small, big, 1, 10, 2, big, -1)).toThrow(/^k: buffer \d+ has 5 elements, the call needs 20/);
    expect(() => a.wkvForward(big, big, big, big, 1, 10, 2, big, small)).toThrow(/^state: .*needs 6/);
    expect(() => a.wkvBackward(big, big, big, big, ints, 1, 10, 2, big, big)).toThrow(/^dy: buffer \d+ holds i32, expected f32/);
    expect(() => a.timeMixForward(big, -1, 1, 10, 2, [big, big], [big])).toThrow(/^outs: expected one output per mix/);
    expect(() => a.timeMixForward(big, -1, 1, 10, 2, [big, ints], [big, big])).toThrow(/^mixes: /);
    expect(() => a.timeMixForward(big, -1, 1, 10, 20, [big], [big])).toThrow(/^x: buffer \d+ has 100 elements, the call needs 200/);
    expect(() => a.timeMixBackward([big], [big], 1, 10, 2, ints, false)).toThrow(/^dx: .*i32/);
    expect(() => a.sigmoidGateForward(big, small, big, 10)).toThrow(/^y: /);
    expect(() => a.sigmoidGateBackward(big, big, big, small, -1, 10)).toThrow(/^da: /);
    expect(() => a.reluSquareBackward(big, big, small, 10)).toThrow(/^dx: /);
    expect(() => a.reluSquareForward(big, big, -1)).toThrow(/^n: expected an integer >= 0/);
  });
});
