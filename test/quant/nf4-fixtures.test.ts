/** NF4 and double quantization held bit for bit to ../shared/fixtures/nf4/cases.json. */
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedPath } from '../helpers/shared.js';
import { DYNAMIC_MAP, DYNAMIC_THRESHOLDS, NF4_CODE, NF4_THRESHOLDS } from '../../src/quant/nf4-codebook.js';
import {
  absmaxOf, centerAbsmax, dequantizeBlockwise8, dequantizeNf4, quantizeBlockwise8, quantizeNf4,
} from '../../src/quant/nf4.js';
import { expectBitEqual, unpackCodes } from './helpers.js';

interface DoubleQuantCase {
  offset: number;
  absmax_minus_offset: number[];
  absmax_q: number[];
  nested_absmax: number[];
  absmax_dequantized: number[];
  dequantized: number[];
}

interface Nf4Case {
  name: string;
  shape: number[];
  n: number;
  input: number[];
  codes: number[];
  packed_hex: string;
  absmax: number[];
  dequantized_no_double_quant: number[];
  double_quant: DoubleQuantCase;
}

interface Blockwise8Case {
  name: string;
  blocksize: number;
  input: number[];
  q: number[];
  absmax: number[];
  dequantized: number[];
}

interface Fixtures {
  nf4_code: number[];
  nf4_thresholds: number[];
  nested_quant_map: number[];
  nested_quant_map_thresholds: number[];
  cases: Nf4Case[];
  blockwise8_cases: Blockwise8Case[];
}

const fixture = sharedPath('fixtures', 'nf4', 'cases.json');
const data: Fixtures | undefined = fixture.present
  ? (JSON.parse(fs.readFileSync(fixture.path, 'utf8')) as Fixtures)
  : undefined;

describe.skipIf(data === undefined)('NF4 fixtures (cases.json)', () => {
  const fx = data!;

  it('code tables and thresholds', () => {
    expectBitEqual(NF4_CODE, fx.nf4_code);
    expectBitEqual(NF4_THRESHOLDS, fx.nf4_thresholds);
    expectBitEqual(DYNAMIC_MAP, fx.nested_quant_map);
    expectBitEqual(DYNAMIC_THRESHOLDS, fx.nested_quant_map_thresholds);
  });

  describe.each(fx?.cases ?? [])('$name', (c) => {
    const input = Float32Array.from(c.input);

    it('codes, packing, absmax and dequantization without double quant', () => {
      const state = quantizeNf4(input, { shape: c.shape, doubleQuant: false });
      expect(state.n).toBe(c.n);
      expect(Buffer.from(state.packed).toString('hex')).toBe(c.packed_hex);
      expect(Array.from(unpackCodes(state.packed, c.n))).toEqual(c.codes);
      expectBitEqual(state.absmax!, c.absmax);
      expectBitEqual(dequantizeNf4(state), c.dequantized_no_double_quant);
    });

    it('double quantization', () => {
      const dqx = c.double_quant;
      const state = quantizeNf4(input, { shape: c.shape });
      expect(Buffer.from(state.packed).toString('hex')).toBe(c.packed_hex);
      expect(state.absmax).toBeUndefined();
      const dq = state.doubleQuant!;
      expect(Object.is(dq.offset, Math.fround(dqx.offset))).toBe(true);
      expectBitEqual(centerAbsmax(Float32Array.from(c.absmax)).centered, dqx.absmax_minus_offset);
      expect(Array.from(dq.absmaxQ)).toEqual(dqx.absmax_q);
      expectBitEqual(dq.nestedAbsmax, dqx.nested_absmax);
      expectBitEqual(absmaxOf(state), dqx.absmax_dequantized);
      expectBitEqual(dequantizeNf4(state), dqx.dequantized);
    });
  });

  describe.each(fx?.blockwise8_cases ?? [])('blockwise8 $name', (c) => {
    it('q, absmax and dequantized', () => {
      const { q, absmax } = quantizeBlockwise8(Float32Array.from(c.input), c.blocksize);
      expect(Array.from(q)).toEqual(c.q);
      expectBitEqual(absmax, c.absmax);
      expectBitEqual(dequantizeBlockwise8(q, absmax, c.blocksize), c.dequantized);
    });
  });
});
