/** Shared by the products tests (gemm, nf4, lora, head-ce): comparisons and SIMD/BLAS switches. */
import { addon, nativeAddon } from '../helpers/native.js';

/** max |a - b| / (|b| + rms(b)): relative error, floored at the typical size of the values. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let ss = 0;
  for (let i = 0; i < b.length; i++) ss += b[i]! * b[i]!;
  const floor = Math.sqrt(ss / Math.max(1, b.length)) || 1e-30;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + floor);
    if (!(e <= worst)) worst = e; // NaN propagates as a failure
  }
  return worst;
}

/** True when the two arrays hold the same float32 bits. */
export function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

/** Runs fn with an environment variable set (the addon reads DITTY_SIMD and DITTY_BLAS on each call). */
export function withEnv<T>(name: string, value: string, fn: () => T): T {
  const old = process.env[name];
  process.env[name] = value;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  }
}

/** The SIMD levels this CPU can run, widest first (each kernel path is tested at each). */
export function simdLevels(): string[] {
  const simd = nativeAddon?.buildInfo().simd ?? 'portable';
  return simd === 'avx512' ? ['avx512', 'avx2', 'portable'] : simd === 'avx2' ? ['avx2', 'portable'] : ['portable'];
}

/** Runs fn at each SIMD level with BLAS off, so the own kernels are what runs. */
export function eachSimd(fn: (simd: string) => void): void {
  for (const simd of simdLevels()) withEnv('DITTY_BLAS', 'none', () => withEnv('DITTY_SIMD', simd, () => fn(simd)));
}

/** Runs fn with threads set to n, restoring the old count. */
export function withThreads<T>(n: number, fn: () => T): T {
  const a = addon();
  const old = a.threads();
  a.setThreads(n);
  try {
    return fn();
  } finally {
    a.setThreads(old);
  }
}
