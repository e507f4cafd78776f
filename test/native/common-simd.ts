/** SIMD paths the common and rwkv kernel tests run under: each kernel call reads DITTY_SIMD. */
import { afterAll, beforeAll } from 'vitest';
import { addon } from '../helpers/native.js';

/** 'default' leaves DITTY_SIMD unset (the widest path the CPU has); the others cap it. */
export const SIMD_PATHS = ['default', 'avx2', 'portable'] as const;
export type SimdPath = (typeof SIMD_PATHS)[number];

/** Inside a describe: run its tests with DITTY_SIMD set to `path`, restoring the old value after. */
export function useSimdPath(path: SimdPath): void {
  const saved = process.env['DITTY_SIMD'];
  beforeAll(() => {
    if (path === 'default') delete process.env['DITTY_SIMD'];
    else process.env['DITTY_SIMD'] = path;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env['DITTY_SIMD'];
    else process.env['DITTY_SIMD'] = saved;
  });
}

/** The path the addon reports for the current DITTY_SIMD (a cap can only narrow it). */
export function activeSimd(): string {
  return addon().buildInfo().simd;
}

/** Deterministic values in [lo, hi) (an LCG: the tests need no quality, only repeatability). */
export function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

/** Largest |a - b| / (|b| + floor): relative error where |b| >= floor, absolute (scaled) below it. */
export function relErr(a: Float32Array, b: Float32Array, floor: number): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor);
    if (Number.isNaN(e)) return Infinity;
    worst = Math.max(worst, e);
  }
  return worst;
}

/** Distance in units in the last place between float32 values (0 when equal). */
export function ulpDiff(a: number, b: number): number {
  const f = new Float32Array([a, b]);
  const i = new Int32Array(f.buffer);
  const key = (x: number): number => (x < 0 ? -2147483648 - x : x);
  return Math.abs(key(i[0]!) - key(i[1]!));
}

/** An i32 buffer holding `values`. */
export function i32Buffer(values: Int32Array): number {
  const a = addon();
  const id = a.alloc(3, values.length);
  a.write(id, values, 0);
  return id;
}
