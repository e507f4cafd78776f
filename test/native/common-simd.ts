/**
 * What the native CPU kernel tests (common, rwkv, adamw) share: their frame (a describe on the tfjs
 * backend, a pool of native buffers freed after it), the SIMD paths they run under (each kernel call
 * reads DITTY_SIMD) and comparisons of float32 results.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, nativeMissing } from '../helpers/native.js';

/** Native buffers a test file allocates, all freed after its tests (see describeKernels). */
export interface BufferPool {
  /** adds `id` to the pool and returns it */
  keep(id: number): number;
  /** a new f32 buffer holding `values` */
  upload(values: Float32Array): number;
  /** a new f32 buffer of n zeros */
  zeros(n: number): number;
  freeAll(): void;
}

export function bufferPool(): BufferPool {
  const ids: number[] = [];
  const keep = (id: number): number => {
    ids.push(id);
    return id;
  };
  return {
    keep,
    upload: (values) => keep(f32Buffer(values)),
    zeros: (n) => keep(addon().alloc(0, n)),
    freeAll: () => { for (const id of ids.splice(0)) addon().free(id); },
  };
}

/** A kernel test file's describe: skipped without the addon, on the tfjs backend its references use, freeing `pool` after its tests. */
export function describeKernels(name: string, pool: BufferPool, body: () => void): void {
  describe.skipIf(nativeMissing)(name, () => {
    beforeAll(async () => { await useBackend(); });
    afterAll(() => pool.freeAll());
    body();
  });
}

/** 'default' leaves DITTY_SIMD unset (the widest path the CPU has); the others cap it. */
export const SIMD_PATHS = ['default', 'avx2', 'portable'] as const;
export type SimdPath = (typeof SIMD_PATHS)[number];

/** Inside a describe: `body` once per SIMD path, in a describe of its own that runs with DITTY_SIMD set to the path. */
export function forEachSimdPath(body: (path: SimdPath) => void): void {
  for (const path of SIMD_PATHS) {
    describe(`DITTY_SIMD=${path}`, () => {
      useSimdPath(path);
      body(path);
    });
  }
}

/** Inside a describe: run its tests with DITTY_SIMD set to `path`, restoring the old value after. */
function useSimdPath(path: SimdPath): void {
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
