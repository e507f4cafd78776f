import { expect } from 'vitest';

/** Asserts bitwise float32 equality (sign of zero included); JSON decimals are read via Math.fround. */
export function expectBitEqual(actual: Float32Array, expected: ArrayLike<number>): void {
  const want = Float32Array.from(expected);
  expect(actual.length).toBe(want.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(want.buffer);
  for (let i = 0; i < want.length; i++) {
    if (a[i] !== b[i]) expect.fail(`float32 mismatch at ${i}: got ${actual[i]}, expected ${want[i]}`);
  }
}

/** The 4-bit codes of the first n values of a packed NF4 buffer (high nibble first). */
export function unpackCodes(packed: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i & 1 ? packed[i >> 1]! & 15 : packed[i >> 1]! >> 4;
  return out;
}

/** Deterministic standard normal samples (mulberry32 + Box-Muller). */
export function normalSamples(n: number, seed: number, std = 1): Float32Array {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}
