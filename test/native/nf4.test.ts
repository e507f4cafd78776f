/** Native NF4: bit-exact with src/quant/nf4.ts and the shared fixtures; linears against the tfjs Nf4Linear. */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import type { Nf4Handles } from '../../src/engine/native/addon.js';
import { uniformValues } from '../../src/random/rng.js';
import { dequantizeNf4Rows, quantizeNf4, type Nf4State } from '../../src/quant/nf4.js';
import { useBackend } from '../helpers/backend.js';
import { addon, f32Buffer, nativeMissing, readF32 } from '../helpers/native.js';
import { sharedPath } from '../helpers/shared.js';
import { normalSamples } from '../quant/helpers.js';
import { bitEqual, eachSimd, relativeError, withThreads } from './gemm-helpers.js';

const allocated: number[] = [];
function track(id: number): number {
  allocated.push(id);
  return id;
}
function u8Buffer(data: Uint8Array): number {
  const id = track(addon().alloc(2, data.length));
  addon().write(id, data, 0);
  return id;
}
function f32(data: Float32Array): number {
  return track(f32Buffer(data));
}
function readU8(id: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  addon().read(id, out, 0);
  return out;
}

/** Uploads a TypeScript NF4 state as the addon's handles (a 1-D state counts as one row). */
function handles(state: Nf4State): Nf4Handles {
  const [rows, cols] = state.shape.length === 2 ? state.shape as [number, number] : [1, state.n];
  const dq = state.doubleQuant;
  return {
    packed: u8Buffer(state.packed), rows, cols, blocksize: state.blocksize,
    absmax: dq ? -1 : f32(state.absmax!),
    absmaxQ: dq ? u8Buffer(dq.absmaxQ) : -1,
    nestedAbsmax: dq ? f32(dq.nestedAbsmax) : -1,
    nestedMap: dq ? f32(dq.nestedMap) : -1,
    offset: dq?.offset ?? 0,
    nestedBlocksize: dq?.nestedBlocksize ?? 256,
  };
}

interface Quantized { packed: Uint8Array; absmax?: Float32Array; absmaxQ?: Uint8Array; nestedAbsmax?: Float32Array; offset: number }

function nativeQuantize(values: Float32Array, blocksize: number, doubleQuant: boolean, nestedBlocksize = 256): Quantized {
  const a = addon();
  const n = values.length;
  const blocks = Math.ceil(n / blocksize);
  const nested = Math.ceil(blocks / nestedBlocksize);
  const ids = {
    values: f32(values), packed: track(a.alloc(2, Math.ceil(n / 2))),
    absmax: doubleQuant ? -1 : track(a.alloc(0, blocks)),
    absmaxQ: doubleQuant ? track(a.alloc(2, blocks)) : -1,
    nested: doubleQuant ? track(a.alloc(0, nested)) : -1,
  };
  const offset = a.nf4Quantize(ids.values, n, blocksize, doubleQuant, nestedBlocksize, ids.packed, ids.absmax, ids.absmaxQ, ids.nested);
  return {
    packed: readU8(ids.packed, Math.ceil(n / 2)), offset,
    ...(doubleQuant
      ? { absmaxQ: readU8(ids.absmaxQ, blocks), nestedAbsmax: readF32(ids.nested, nested) }
      : { absmax: readF32(ids.absmax, blocks) }),
  };
}

function expectSameQuantization(got: Quantized, want: Nf4State, what: string): void {
  expect(Buffer.from(got.packed).equals(Buffer.from(want.packed)), `${what}: packed bytes`).toBe(true);
  const dq = want.doubleQuant;
  if (!dq) {
    expect(bitEqual(got.absmax!, want.absmax!), `${what}: absmax`).toBe(true);
    return;
  }
  expect(Object.is(got.offset, dq.offset), `${what}: offset ${got.offset} vs ${dq.offset}`).toBe(true);
  expect(Buffer.from(got.absmaxQ!).equals(Buffer.from(dq.absmaxQ)), `${what}: absmaxQ`).toBe(true);
  expect(bitEqual(got.nestedAbsmax!, dq.nestedAbsmax), `${what}: nestedAbsmax`).toBe(true);
}

function nativeDequantizeRows(h: Nf4Handles, r0: number, r1: number): Float32Array {
  const out = track(addon().alloc(0, Math.max(1, (r1 - r0) * h.cols)));
  addon().nf4DequantizeRows(h, r0, r1, out);
  return readF32(out, (r1 - r0) * h.cols);
}

interface FixtureCase { name: string; shape: number[]; input: number[]; packed_hex: string; absmax: number[];
  dequantized_no_double_quant: number[]; double_quant: { offset: number; absmax_q: number[]; nested_absmax: number[]; dequantized: number[] } }

const fixture = sharedPath('fixtures', 'nf4', 'cases.json');
const fixtureCases: FixtureCase[] = fixture.present ? (JSON.parse(fs.readFileSync(fixture.path, 'utf8')) as { cases: FixtureCase[] }).cases : [];

afterAll(() => {
  if (nativeMissing) return;
  for (const id of allocated) addon().free(id);
});

describe.skipIf(nativeMissing || !fixture.present)('native NF4 on the shared fixtures (cases.json)', () => {
  it.each(fixtureCases)('$name: bytes, absmax, double quant and dequantized values bit for bit', (c) => {
    const input = Float32Array.from(c.input);
    eachSimd((simd) => {
      const plain = nativeQuantize(input, 64, false);
      expect(Buffer.from(plain.packed).toString('hex'), simd).toBe(c.packed_hex);
      expect(bitEqual(plain.absmax!, Float32Array.from(c.absmax)), simd).toBe(true);
      const dq = nativeQuantize(input, 64, true);
      expect(Buffer.from(dq.packed).toString('hex'), simd).toBe(c.packed_hex);
      expect(Object.is(dq.offset, Math.fround(c.double_quant.offset)), simd).toBe(true);
      expect(Array.from(dq.absmaxQ!), simd).toEqual(c.double_quant.absmax_q);
      expect(bitEqual(dq.nestedAbsmax!, Float32Array.from(c.double_quant.nested_absmax)), simd).toBe(true);
      const shape = c.shape.length === 2 ? c.shape : [1, input.length];
      for (const [state, want] of [
        [quantizeNf4(input, { shape, doubleQuant: false }), c.dequantized_no_double_quant],
        [quantizeNf4(input, { shape }), c.double_quant.dequantized],
      ] as const) {
        const h = handles(state);
        expect(bitEqual(nativeDequantizeRows(h, 0, h.rows), Float32Array.from(want)), `${simd} ${c.name}`).toBe(true);
      }
    });
  });
});

describe.skipIf(nativeMissing)('native NF4 quantize and dequantize vs src/quant/nf4.ts', () => {
  // odd element counts, a partial last block and nested block, special values
  const specials = (v: Float32Array): Float32Array => {
    const out = v.slice();
    out.fill(0, 128, 192); // an all-zero block
    out[200] = -0; out[201] = 1e-42; out[202] = -3e-39; out[203] = 65504; out[204] = -65504;
    out[205] = NaN; out[300] = Infinity; out[400] = -Infinity;
    return out;
  };
  const cases = [
    { rows: 37, cols: 193, blocksize: 64, nested: 256 },
    { rows: 129, cols: 77, blocksize: 128, nested: 32 },
    { rows: 1, cols: 4097, blocksize: 4096, nested: 256 },
    { rows: 260, cols: 33, blocksize: 32, nested: 64 },
  ];
  it.each(cases)('rows $rows, cols $cols, blocksize $blocksize, nested $nested: same bytes and values, every SIMD level and thread count', ({ rows, cols, blocksize, nested }) => {
    const n = rows * cols;
    for (const [label, values] of [['normal', normalSamples(n, rows + cols, 0.02)], ['specials', specials(normalSamples(n, 5))]] as const) {
      for (const doubleQuant of [false, true]) {
        const want = quantizeNf4(values, { shape: [rows, cols], blocksize, doubleQuant, nestedBlocksize: nested });
        const what = `${label} dq=${doubleQuant}`;
        eachSimd((simd) => {
          for (const threads of [1, 2]) {
            expectSameQuantization(withThreads(threads, () => nativeQuantize(values, blocksize, doubleQuant, nested)), want, `${what} ${simd} threads ${threads}`);
          }
          const h = handles(want);
          const [r0, r1] = rows > 4 ? [3, rows - 1] : [0, rows];
          expect(bitEqual(nativeDequantizeRows(h, r0, r1), dequantizeNf4Rows(want, r0, r1)), `${what} ${simd}`).toBe(true);
          expect(nativeDequantizeRows(h, rows, rows).length).toBe(0);
        });
      }
    }
  });

  it('checks its arguments, naming them', () => {
    const a = addon();
    const state = quantizeNf4(normalSamples(64 * 3, 1), { shape: [3, 64] });
    const h = handles(state);
    const out = track(a.alloc(0, 64 * 3));
    expect(() => a.nf4DequantizeRows({ ...h, blocksize: 48 }, 0, 3, out)).toThrow(/^w.blocksize: /);
    expect(() => a.nf4DequantizeRows({ ...h, rows: 4 }, 0, 4, out)).toThrow(/^w.packed: .*needs 128/);
    expect(() => a.nf4DequantizeRows({ ...h, absmaxQ: -1 }, 0, 3, out)).toThrow(/^w: give either absmax/);
    expect(() => a.nf4DequantizeRows({ ...h, nestedMap: h.absmaxQ }, 0, 3, out)).toThrow(/^w.nestedMap: .*u8, expected f32/);
    expect(() => a.nf4DequantizeRows(h, 1, 4, out)).toThrow(/^r0, r1: /);
    expect(() => a.nf4DequantizeRows(h, 0, 3, track(a.alloc(0, 10)))).toThrow(/^out: /);
    const v = f32(new Float32Array(100));
    expect(() => a.nf4Quantize(v, 100, 64, false, 256, track(a.alloc(2, 49)), track(a.alloc(0, 2)), -1, -1)).toThrow(/^packed: /);
    expect(() => a.nf4Quantize(v, 100, 100, false, 256, track(a.alloc(2, 50)), track(a.alloc(0, 2)), -1, -1)).toThrow(/^blocksize: /);
    expect(() => a.nf4Quantize(v, 100, 64, true, 256, track(a.alloc(2, 50)), -1, track(a.alloc(2, 2)), -1)).toThrow(/^nestedAbsmax: /);
  });
});

describe.skipIf(nativeMissing)('native NF4 linears vs the tfjs Nf4Linear', () => {
  beforeAll(async () => { await useBackend(); });

  const cases = [
    { rows: 1, inp: 64, out: 1, bias: false, dq: true },
    { rows: 7, inp: 129, out: 75, bias: true, dq: true },
    { rows: 67, inp: 200, out: 300, bias: true, dq: false },
    { rows: 33, inp: 320, out: 131, bias: false, dq: true },
  ];
  it.each(cases)('rows $rows, in $inp, out $out, bias $bias, double quant $dq: forward and input gradient (1e-5)', ({ rows, inp, out, bias, dq }) => {
    const a = addon();
    const w = normalSamples(out * inp, out, 0.05);
    const b = bias ? uniformValues(out, -1, 1, 3) : undefined;
    const x = uniformValues(rows * inp, -1, 1, 4);
    const dy = uniformValues(rows * out, -1, 1, 5);
    const state = quantizeNf4(w, { shape: [out, inp], doubleQuant: dq });
    const layer = Nf4Linear.fromState('m', state, b);
    const yRef = tf.tidy(() => layer.apply(tf.tensor2d(x, [rows, inp])).dataSync() as Float32Array);
    const dxRef = tf.tidy(() => layer.inputGradient(tf.tensor2d(dy, [rows, out])).dataSync() as Float32Array);
    layer.dispose();
    const h = handles(state);
    const ids = { b: b ? f32(b) : -1, x: f32(x), y: track(a.alloc(0, rows * out)), dy: f32(dy), dx: track(a.alloc(0, rows * inp)) };
    const results: Float32Array[] = [];
    eachSimd((simd) => {
      for (const threads of [1, 2, 3]) {
        withThreads(threads, () => {
          a.fill(ids.y, NaN);
          a.nf4LinearForward(h, ids.b, ids.x, rows, ids.y, false);
          const y = readF32(ids.y, rows * out);
          expect(relativeError(y, yRef), simd).toBeLessThan(1e-5);
          a.nf4LinearForward(h, ids.b, ids.x, rows, ids.y, true);
          expect(relativeError(readF32(ids.y, rows * out), yRef.map((v) => 2 * v)), simd).toBeLessThan(1e-5);
          a.fill(ids.dx, NaN);
          a.nf4LinearInputGrad(h, ids.dy, rows, ids.dx, false);
          const dx = readF32(ids.dx, rows * inp);
          expect(relativeError(dx, dxRef), simd).toBeLessThan(1e-5);
          a.nf4LinearInputGrad(h, ids.dy, rows, ids.dx, true);
          expect(relativeError(readF32(ids.dx, rows * inp), dxRef.map((v) => 2 * v)), simd).toBeLessThan(1e-5);
          if (simd === 'avx512') results.push(y, dx);
        });
      }
    });
    // the same bits on any thread count
    for (let i = 2; i < results.length; i++) expect(bitEqual(results[i]!, results[i % 2]!)).toBe(true);
    expect(() => a.nf4LinearForward(h, ids.b, ids.x, rows + 1, ids.y, false)).toThrow(/^x: /);
    expect(() => a.nf4LinearInputGrad(h, ids.dy, rows, track(a.alloc(0, rows * inp - 1)), false)).toThrow(/^dx: /);
  });
});
