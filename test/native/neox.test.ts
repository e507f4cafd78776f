/**
 * GPT-NeoX native kernels against the tfjs engine's ops (src/engine/fused.ts causalAttention, geluErf,
 * geluNew, geluFast) and plain references (src/engine/reference/neox.ts), on every SIMD path the CPU
 * has (DITTY_SIMD is read by the addon on each call), at odd sizes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { causalAttention, geluErf, geluFast, geluNew } from '../../src/engine/fused.js';
import { GELU_KIND } from '../../src/engine/native/addon.js';
import { attentionLse, qkvRotary, qkvRotaryBackward, type RotaryShape } from '../../src/engine/reference/neox.js';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, maxRelativeError, nativeMissing, readF32 } from '../helpers/native.js';

/** A seeded N(0, sd) Float32Array (Box-Muller over a 32-bit LCG). */
function randn(n: number, seed: number, sd = 1): Float32Array {
  let s = seed >>> 0;
  const u = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

const LEVELS = ['avx512', 'avx2', 'portable'] as const;

/** The SIMD levels this CPU runs (the addon caps its level by DITTY_SIMD on every call). */
function simdLevels(): string[] {
  const saved = process.env['DITTY_SIMD'];
  const levels = LEVELS.filter((level) => {
    process.env['DITTY_SIMD'] = level;
    return addon().buildInfo().simd === level;
  });
  if (saved === undefined) delete process.env['DITTY_SIMD'];
  else process.env['DITTY_SIMD'] = saved;
  return levels;
}

function withSimd<R>(level: string, fn: () => R): R {
  const saved = process.env['DITTY_SIMD'];
  process.env['DITTY_SIMD'] = level;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env['DITTY_SIMD'];
    else process.env['DITTY_SIMD'] = saved;
  }
}

/** [B, T, H*d] (heads merged) -> [B, H, T, d] */
function splitHeads(x: Float32Array, B: number, T: number, H: number, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) out.set(x.subarray(((b * T + t) * H + h) * d, ((b * T + t) * H + h + 1) * d), ((b * H + h) * T + t) * d);
  return out;
}

/** [T, S] mask as GptNeoXModel.causalMask: 0 where query t (at position S - T + t) sees key j, -1e30 elsewhere. */
function causalMask(T: number, S: number): tf.Tensor2D {
  const m = new Float32Array(T * S);
  for (let t = 0; t < T; t++) m.fill(-1e30, t * S + S - T + t + 1, (t + 1) * S);
  return tf.tensor2d(m, [T, S]);
}

/**
 * max |a - b| / max |b|: the error relative to the tensor's scale. Elementwise relative error is
 * no measure for attention outputs near 0, where both float32 computations (tfjs's and this) are
 * ~1e-6 of the scale away from the exact value.
 */
function scaledError(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? err : err / scale;
}

describe.skipIf(nativeMissing)('native GPT-NeoX kernels', () => {
  let levels: string[] = [];
  const ids: number[] = [];
  const upload = (x: Float32Array): number => {
    const id = f32Buffer(x);
    ids.push(id);
    return id;
  };
  const zeros = (n: number): number => {
    const id = addon().alloc(0, n);
    ids.push(id);
    return id;
  };

  beforeAll(async () => {
    await useBackend();
    levels = simdLevels();
  });
  afterAll(() => {
    for (const id of ids) addon().free(id);
  });

  it('runs on the portable path and each vector path the CPU has', () => {
    expect(levels).toContain('portable');
    process.stderr.write(`neox kernels tested on: ${levels.join(', ')}\n`);
  });

  describe('qkv split + partial rotary', () => {
    const shapes: RotaryShape[] = [
      { B: 1, T: 1, heads: 1, d: 16, R: 16, base: 10000, offset: 0 },
      { B: 2, T: 7, heads: 3, d: 24, R: 6, base: 10000, offset: 5 },
      { B: 1, T: 13, heads: 2, d: 80, R: 20, base: 10000, offset: 0 },
      { B: 2, T: 5, heads: 5, d: 64, R: 0, base: 10000, offset: 3 },
      { B: 1, T: 9, heads: 4, d: 64, R: 16, base: 500, offset: 1000 },
    ];
    for (const s of shapes) {
      it(`forward and backward at B=${s.B} T=${s.T} heads=${s.heads} d=${s.d} R=${s.R} offset=${s.offset}`, () => {
        const a = addon();
        const n = s.B * s.T * s.heads * s.d;
        const qkv = randn(3 * n, 11 + s.d, 2);
        const [q, k, v] = [zeros(n), zeros(n), zeros(n)];
        a.qkvRotaryForward(upload(qkv), s.B, s.T, s.heads, s.d, s.R, s.base, s.offset, q, k, v);
        const ref = qkvRotary(qkv, s);
        expect(maxRelativeError(readF32(q, n), ref.q)).toBeLessThan(1e-6);
        expect(maxRelativeError(readF32(k, n), ref.k)).toBeLessThan(1e-6);
        expect(Array.from(readF32(v, n))).toEqual(Array.from(ref.v));

        const [dq, dk, dv] = [randn(n, 3), randn(n, 4), randn(n, 5)];
        const dqkv = zeros(3 * n);
        a.qkvRotaryBackward(upload(dq), upload(dk), upload(dv), s.B, s.T, s.heads, s.d, s.R, s.base, s.offset, dqkv);
        expect(maxRelativeError(readF32(dqkv, 3 * n), qkvRotaryBackward(dq, dk, dv, s), 1e-3)).toBeLessThan(1e-5);
      });
    }
  });

  describe('causal attention', () => {
    // [B, H, T, S, d]: odd T and S, S > T for decoding after a KV cache, T = 1
    const shapes: [number, number, number, number, number][] = [
      [1, 1, 1, 1, 16], [2, 3, 7, 7, 24], [1, 5, 37, 37, 64], [2, 2, 19, 19, 80], [1, 4, 70, 70, 16],
      [1, 2, 1, 9, 64], [2, 3, 5, 23, 24], [1, 1, 67, 131, 80], [1, 1, 131, 131, 64], [1, 2, 1, 200, 24],
    ];
    for (const [B, H, T, S, d] of shapes) {
      it(`matches fused.ts causalAttention at B=${B} H=${H} T=${T} S=${S} d=${d}`, () => {
        const a = addon();
        const q = randn(B * H * T * d, 1 + T, 1.5), k = randn(B * H * S * d, 2 + S, 1.5), v = randn(B * H * S * d, 3 + d);
        const dy = randn(B * H * T * d, 4 + H);
        const mask = causalMask(T, S);
        const [qt, kt, vt] = [tf.tensor4d(q, [B, H, T, d]), tf.tensor4d(k, [B, H, S, d]), tf.tensor4d(v, [B, H, S, d])];
        const refOut = causalAttention(qt, kt, vt, mask).dataSync() as Float32Array;
        const refLse = attentionLse(q, k, B, H, T, S, d);
        const grads = S === T
          ? tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
            tf.sum(tf.mul(causalAttention(x as tf.Tensor4D, y as tf.Tensor4D, z as tf.Tensor4D, mask), tf.tensor4d(dy, [B, H, T, d]))))([qt, kt, vt])
            .map((g) => g.dataSync() as Float32Array)
          : [];
        // dout in the merged layout the kernel reads: [B, T, H*d]
        const dout = new Float32Array(dy.length);
        for (let b = 0; b < B; b++)
          for (let h = 0; h < H; h++)
            for (let t = 0; t < T; t++) dout.set(dy.subarray(((b * H + h) * T + t) * d, ((b * H + h) * T + t + 1) * d), ((b * T + t) * H + h) * d);
        const [qi, ki, vi, di] = [upload(q), upload(k), upload(v), upload(dout)];
        for (const level of levels) {
          withSimd(level, () => {
            const out = zeros(B * T * H * d), lse = zeros(B * H * T);
            a.attentionForward(qi, ki, vi, B, H, T, S, d, out, lse);
            expect(scaledError(splitHeads(readF32(out, B * T * H * d), B, T, H, d), refOut), `${level} out`).toBeLessThan(1e-5);
            expect(scaledError(readF32(lse, B * H * T), refLse), `${level} lse`).toBeLessThan(1e-5);
            if (S !== T) return;
            const [dq, dk, dv] = [zeros(q.length), zeros(k.length), zeros(v.length)];
            a.attentionBackward(di, qi, ki, vi, out, lse, B, H, T, d, dq, dk, dv);
            [dq, dk, dv].forEach((g, i) => {
              expect(scaledError(readF32(g, q.length), grads[i]!), `${level} ${'qkv'[i]}`).toBeLessThan(1e-4);
            });
          });
        }
        tf.dispose([qt, kt, vt, mask]);
      });
    }

    it('leaves lse out when it is not wanted', () => {
      const a = addon();
      const [B, H, T, S, d] = [1, 2, 9, 12, 24];
      const [q, k, v] = [upload(randn(B * H * T * d, 41)), upload(randn(B * H * S * d, 42)), upload(randn(B * H * S * d, 43))];
      const [withLse, without] = [zeros(B * T * H * d), zeros(B * T * H * d)];
      a.attentionForward(q, k, v, B, H, T, S, d, withLse, zeros(B * H * T));
      a.attentionForward(q, k, v, B, H, T, S, d, without, -1);
      expect(readF32(without, B * T * H * d)).toEqual(readF32(withLse, B * T * H * d));
    });

    // 3 threads run B*H = 6 heads one per task, 4 threads split B*H = 2 heads into query and key blocks
    for (const [B, H, T, d, threads] of [[2, 3, 150, 24, 3], [1, 2, 200, 64, 4]] as const) {
      it(`gives the same bits on 1 and ${threads} threads at B=${B} H=${H} T=${T} d=${d}`, () => {
        const a = addon();
        const n = B * H * T * d;
        const [q, k, v, dout] = [upload(randn(n, 31)), upload(randn(n, 32)), upload(randn(n, 33)), upload(randn(n, 34))];
        const run = (count: number): Float32Array[] => {
          a.setThreads(count);
          const out = zeros(n), lse = zeros(B * H * T), dq = zeros(n), dk = zeros(n), dv = zeros(n);
          a.attentionForward(q, k, v, B, H, T, T, d, out, lse);
          a.attentionBackward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv);
          return [readF32(out, n), readF32(lse, B * H * T), readF32(dq, n), readF32(dk, n), readF32(dv, n)];
        };
        const before = a.threads();
        try {
          for (const level of levels) {
            withSimd(level, () => {
              const one = run(1), many = run(threads);
              one.forEach((x, i) => expect(Buffer.from(many[i]!.buffer).equals(Buffer.from(x.buffer)), `${level} output ${i}`).toBe(true));
            });
          }
        } finally {
          a.setThreads(before);
        }
      });
    }
  });

  describe('qkv rotary + attention together', () => {
    /** GptNeoXModel.attention up to the merged context, in the model's own tfjs ops (offset 0, no cache). */
    function modelContext(qkv: tf.Tensor3D, heads: number, d: number, R: number): tf.Tensor {
      const [B, T] = qkv.shape;
      const x: tf.Tensor4D = tf.reshape(qkv, [B, T, heads, 3 * d]);
      const part = (j: number): tf.Tensor4D => tf.transpose(tf.slice(x, [0, 0, 0, j * d], [B, T, heads, d]), [0, 2, 1, 3]);
      const { cos, sin } = rotaryTables(T, R);
      const rotate = (y: tf.Tensor4D): tf.Tensor4D => {
        const yr = tf.slice(y, [0, 0, 0, 0], [B, heads, T, R]);
        const y1 = tf.slice(yr, [0, 0, 0, 0], [B, heads, T, R / 2]);
        const y2 = tf.slice(yr, [0, 0, 0, R / 2], [B, heads, T, R / 2]);
        const rotated = tf.add(tf.mul(yr, cos), tf.mul(tf.concat([tf.neg(y2), y1], 3), sin));
        return tf.concat([rotated, tf.slice(y, [0, 0, 0, R], [B, heads, T, d - R])], 3) as tf.Tensor4D;
      };
      const context = causalAttention(rotate(part(0)), rotate(part(1)), part(2), causalMask(T, T));
      return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B, T, heads * d]);
    }
    /** GptNeoXModel.rotaryTables at offset 0 (base 10000), as [T, R] tensors. */
    function rotaryTables(T: number, R: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
      const cos = new Float32Array(T * R), sin = new Float32Array(T * R);
      for (let t = 0; t < T; t++) {
        for (let m = 0; m < R / 2; m++) {
          const angle = t * 10000 ** (-2 * m / R);
          cos[t * R + m] = cos[t * R + m + R / 2] = Math.cos(angle);
          sin[t * R + m] = sin[t * R + m + R / 2] = Math.sin(angle);
        }
      }
      return { cos: tf.tensor2d(cos, [T, R]), sin: tf.tensor2d(sin, [T, R]) };
    }

    it('gives the context and the qkv gradient of gpt-neox.ts attention (pythia-like: R = d/4)', () => {
      const a = addon();
      const [B, T, heads, d, R] = [2, 45, 3, 64, 16];
      const n = B * T * heads * d;
      const qkv = randn(3 * n, 51, 2), dy = randn(n, 52);
      const qkvT = tf.tensor3d(qkv, [B, T, 3 * heads * d]);
      const want = tf.tidy(() => modelContext(qkvT, heads, d, R).dataSync() as Float32Array);
      const wantGrad = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(modelContext(x as tf.Tensor3D, heads, d, R), tf.tensor3d(dy, [B, T, heads * d]))))(qkvT)
        .dataSync() as Float32Array);
      const [q, k, v, out, lse, dq, dk, dv, dqkv] = [n, n, n, n, B * heads * T, n, n, n, 3 * n].map(zeros) as number[];
      a.qkvRotaryForward(upload(qkv), B, T, heads, d, R, 10000, 0, q!, k!, v!);
      a.attentionForward(q!, k!, v!, B, heads, T, T, d, out!, lse!);
      expect(scaledError(readF32(out!, n), want)).toBeLessThan(1e-5);
      a.attentionBackward(upload(dy), q!, k!, v!, out!, lse!, B, heads, T, d, dq!, dk!, dv!);
      a.qkvRotaryBackward(dq!, dk!, dv!, B, T, heads, d, R, 10000, 0, dqkv!);
      expect(scaledError(readF32(dqkv!, 3 * n), wantGrad)).toBeLessThan(1e-4);
    });
  });

  describe('GELU', () => {
    const kinds = [['erf', geluErf], ['tanh', geluNew], ['fast', geluFast]] as const;
    // odd lengths around the vector widths, values over the whole useful range and beyond
    const x = randn(4099, 77, 3);
    x.set([0, -0, 1e-20, -1e-20, 0.625, -0.625, 1, -1, 5, -5, 9.5, -9.5, 12, -12, 50, -50, 3e3, -3e3], 0);
    const dy = randn(x.length, 78);
    /**
     * |native - tfjs| <= 1e-6 |tfjs| + 0.5 |x| u with u one float32 ulp of 1: both compute 0.5 x (1 + f)
     * with f = erf or tanh rounded to float32, and 1 + f cancels where f is near -1, so an ulp of f
     * (libm's, or tfjs wasm's, which differ by that much) is all that is left of the result there.
     */
    const check = (got: Float32Array, want: Float32Array, scaleBy: Float32Array, rel: number): void => {
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        const allowed = rel * Math.abs(want[i]!) + 0.5 * Math.abs(scaleBy[i]!) * 2 ** -23 + 1e-30;
        worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / allowed);
      }
      expect(worst).toBeLessThanOrEqual(1);
    };
    for (const [name, op] of kinds) {
      it(`${name}: forward and gradient as fused.ts at n = 1, 15, 4099`, () => {
        const a = addon();
        const xt = tf.tensor1d(x);
        const refY = op(xt).dataSync() as Float32Array;
        const refG = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t), tf.tensor1d(dy))))(xt).dataSync() as Float32Array;
        const xi = upload(x), dyi = upload(dy);
        for (const level of levels) {
          withSimd(level, () => {
            for (const n of [1, 15, x.length]) {
              const out = zeros(n), dx = zeros(n);
              a.geluForward(xi, out, n, GELU_KIND[name]);
              a.geluBackward(xi, dyi, dx, n, GELU_KIND[name]);
              check(readF32(out, n), refY.subarray(0, n), x.subarray(0, n), 1e-6);
              const dyScaled = x.subarray(0, n).map((xv, i) => (1 + Math.abs(xv)) * dy[i]!);
              check(readF32(dx, n), refG.subarray(0, n), dyScaled, 1e-6);
            }
          });
        }
        xt.dispose();
      });
    }

    it('works in place (out = x, dx = dy)', () => {
      const a = addon();
      const n = 37;
      const xi = upload(x.subarray(0, n)), copy = upload(x.subarray(0, n)), want = zeros(n);
      a.geluForward(xi, want, n, GELU_KIND.erf);
      a.geluForward(copy, copy, n, GELU_KIND.erf);
      expect(readF32(copy, n)).toEqual(readF32(want, n));
      const dyi = upload(dy.subarray(0, n)), dyCopy = upload(dy.subarray(0, n));
      a.geluBackward(xi, dyi, want, n, GELU_KIND.tanh);
      a.geluBackward(xi, dyCopy, dyCopy, n, GELU_KIND.tanh);
      expect(readF32(dyCopy, n)).toEqual(readF32(want, n));
    });
  });

  describe('argument checks', () => {
    it('names a buffer that is too small or of the wrong dtype, and bad shapes', () => {
      const a = addon();
      const small = zeros(10), big = zeros(4096);
      const ints = a.alloc(3, 4096);
      ids.push(ints);
      expect(() => a.attentionForward(big, small, big, 1, 2, 8, 8, 16, big, -1)).toThrow(/^k: buffer \d+ has 10 elements, the call needs 256/);
      expect(() => a.attentionForward(big, big, big, 1, 2, 8, 8, 16, big, small)).toThrow(/^lse: .* has 10 elements, the call needs 16/);
      expect(() => a.attentionForward(big, big, big, 1, 2, 8, 4, 16, big, -1)).toThrow(/^S: keys must cover the queries/);
      expect(() => a.attentionBackward(big, big, big, big, big, ints, 1, 2, 8, 16, big, big, big)).toThrow(/^lse: buffer \d+ holds i32, expected f32/);
      expect(() => a.attentionBackward(big, big, big, big, big, big, 1, 2, 8, 16, big, big, small)).toThrow(/^dv: /);
      expect(() => a.qkvRotaryForward(big, 1, 4, 2, 16, 7, 10000, 0, big, big, big)).toThrow(/^R: the rotary dimensions must be even/);
      expect(() => a.qkvRotaryForward(small, 1, 4, 2, 16, 8, 10000, 0, big, big, big)).toThrow(/^qkv: .* the call needs 384/);
      expect(() => a.qkvRotaryForward(big, 1, 4, 2, 16, 8, 0, 0, big, big, big)).toThrow(/^base: expected a positive number/);
      expect(() => a.qkvRotaryBackward(big, big, big, 1, 4, 2, 16, 8, 10000, 0, small)).toThrow(/^dqkv: /);
      const huge = 2 ** 40; // shapes whose element count overflows int64 are refused, never wrapped
      expect(() => a.qkvRotaryForward(big, huge, huge, 2, 16, 8, 10000, 0, big, big, big)).toThrow(/^q: shape too large$/);
      expect(() => a.qkvRotaryBackward(big, big, big, 1, 2 ** 27, 2 ** 32, 8, 8, 10000, 0, big)).toThrow(/^dqkv: shape too large$/);
      expect(() => a.attentionForward(big, big, big, 1, huge, 1, huge, 16, big, -1)).toThrow(/^k: shape too large$/);
      expect(() => a.attentionBackward(big, big, big, big, big, big, huge, huge, 1, 16, big, big, big)).toThrow(/^q: shape too large$/);
      expect(() => a.geluForward(big, small, 11, GELU_KIND.erf)).toThrow(/^out: /);
      expect(() => a.geluBackward(big, ints, big, 11, GELU_KIND.fast)).toThrow(/^dy: .* holds i32/);
      expect(() => a.geluForward(big, big, 11, 3)).toThrow(/^kind: expected 0 \(erf\), 1 \(tanh\) or 2 \(fast\)/);
      expect(() => a.attentionForward(big, big, big, 1, 2, 1.5, 8, 16, big, -1)).toThrow(/^T: expected an integer/);
    });
  });
});
