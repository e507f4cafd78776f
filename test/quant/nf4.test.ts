import { describe, expect, it } from 'vitest';
import { NF4_CODE, nf4Index } from '../../src/quant/nf4-codebook.js';
import {
  absmaxOf, bitsPerParameter, dequantizeNf4, dequantizeNf4Into, dequantizeNf4Range, dequantizeNf4Rows,
  nf4Bytes, quantizeNf4, validateBlocksize,
} from '../../src/quant/nf4.js';
import { expectBitEqual, normalSamples, unpackCodes } from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('quantizeNf4', () => {
  it('reproduces the worked examples of REFERENCE.md', () => {
    const a = quantizeNf4(Float32Array.of(0.1, -0.5, 1.0, 0.03979014977812767), { doubleQuant: false });
    expect(hex(a.packed)).toBe('82f7');
    const b = quantizeNf4(Float32Array.of(0.1, -0.5, 2.0), { doubleQuant: false });
    expect(hex(b.packed)).toBe('84f7');
    expect(Array.from(unpackCodes(b.packed, 3))).toEqual([8, 4, 15]);
  });

  it('gives an exact tie on a threshold the lower code', () => {
    expect(nf4Index(Math.fround(0.03979014977812767))).toBe(7);
    expect(nf4Index(-1)).toBe(0);
    expect(nf4Index(1)).toBe(15);
    expect(nf4Index(-0)).toBe(7);
  });

  it('codes an all-zero block as 7 and dequantizes it to +0', () => {
    const s = quantizeNf4(new Float32Array(70), { doubleQuant: false });
    expect(hex(s.packed)).toBe('77'.repeat(35));
    expect(Array.from(s.absmax!)).toEqual([0, 0]);
    expect(dequantizeNf4(s).every((v) => Object.is(v, 0))).toBe(true);
  });

  it('validates blocksize and shape with clear errors', () => {
    const x = new Float32Array(128);
    for (const bad of [0, 16, 48, 100, 8192, 64.5, NaN]) {
      expect(() => quantizeNf4(x, { blocksize: bad })).toThrow(/blocksize must be a power of two between 32 and 4096/);
    }
    expect(() => quantizeNf4(x, { nestedBlocksize: 3 })).toThrow(/nestedBlocksize must be a power of two/);
    for (const ok of [32, 64, 128, 4096]) expect(() => validateBlocksize(ok)).not.toThrow();
    expect(() => quantizeNf4(x, { shape: [3, 40] })).toThrow(/holds 120 values, got 128/);
  });

  it('keeps the error of each element within absmax times the largest half-gap of the code table', () => {
    let maxHalfGap = 0;
    for (let i = 0; i + 1 < 16; i++) maxHalfGap = Math.max(maxHalfGap, (NF4_CODE[i + 1]! - NF4_CODE[i]!) / 2);
    for (const [seed, blocksize, scale] of [[1, 64, 0.02], [2, 32, 3], [3, 256, 1e-4], [4, 4096, 50]] as const) {
      const x = normalSamples(10_007, seed, scale);
      const s = quantizeNf4(x, { blocksize, doubleQuant: false });
      const y = dequantizeNf4(s);
      for (let i = 0; i < x.length; i++) {
        const bound = s.absmax![Math.floor(i / blocksize)]! * maxHalfGap * (1 + 1e-6);
        if (!(Math.abs(y[i]! - x[i]!) <= bound)) expect.fail(`element ${i}: |${y[i]} - ${x[i]}| > ${bound}`);
      }
    }
  });

  it('double quant changes only the absmax, which stays close to the original', () => {
    const x = normalSamples(64 * 600 + 5, 9, 0.05);
    const plain = quantizeNf4(x, { doubleQuant: false });
    const dq = quantizeNf4(x);
    expect(hex(dq.packed)).toBe(hex(plain.packed));
    const a = absmaxOf(dq);
    for (let j = 0; j < a.length; j++) expect(Math.abs(a[j]! - plain.absmax![j]!)).toBeLessThan(0.01 * plain.absmax![j]!);
  });
});

describe('dequantizeNf4 variants', () => {
  const rows = 7;
  const cols = 13; // odd, so rows start on odd elements and inside blocks
  const x = normalSamples(rows * cols, 5, 0.1);

  it.each([true, false])('range, rows and caller buffer agree with the full result (doubleQuant %s)', (doubleQuant) => {
    const s = quantizeNf4(x, { shape: [rows, cols], blocksize: 32, doubleQuant, nestedBlocksize: 32 });
    const full = dequantizeNf4(s);
    const buf = new Float32Array(rows * cols + 3);
    expect(dequantizeNf4Into(s, buf)).toBe(buf);
    expectBitEqual(buf.subarray(0, full.length), full);
    for (const [r0, r1] of [[0, 7], [1, 2], [3, 6], [6, 7], [2, 2]] as const) {
      expectBitEqual(dequantizeNf4Rows(s, r0, r1), full.subarray(r0 * cols, r1 * cols));
    }
    expectBitEqual(dequantizeNf4Range(s, 31, 66), full.subarray(31, 66));
    expect(() => dequantizeNf4Rows(s, 5, 8)).toThrow(/row range/);
    expect(() => dequantizeNf4Range(s, 0, 10, new Float32Array(5))).toThrow(/output holds 5/);
    expect(() => dequantizeNf4Rows(quantizeNf4(x), 0, 1)).toThrow(/2-D/);
  });
});

describe('size and speed', () => {
  it('stores 4.127 bits per parameter with double quant at blocksize 64, 4.5 without', () => {
    const x = normalSamples(2048 * 2048, 11, 0.02);
    const dq = quantizeNf4(x, { shape: [2048, 2048] });
    expect(bitsPerParameter(dq)).toBeCloseTo(4.127, 3);
    expect(nf4Bytes(dq)).toBe(2048 * 1024 + 65536 + 4 * 256 + 4);
    expect(bitsPerParameter(quantizeNf4(x, { doubleQuant: false }))).toBeCloseTo(4.5, 6);
  });
});
