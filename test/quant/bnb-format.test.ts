import { describe, expect, it } from 'vitest';
import { fromBnbTensors, quantStateDtypeOf, quantStateJson, toBnbTensors, type BnbTensor, type StoredTensor } from '../../src/quant/bnb-format.js';
import { dequantizeNf4, quantizeNf4, type Nf4State } from '../../src/quant/nf4.js';
import { expectBitEqual, normalSamples } from './helpers.js';

const P = 'gpt_neox.layers.0.attention.query_key_value';

function lookup(tensors: BnbTensor[]): (name: string) => StoredTensor | undefined {
  const byName = new Map(tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, bytes: t.data }]));
  return (name) => byName.get(name);
}

function expectSameState(a: Nf4State, b: Nf4State): void {
  expect(b.n).toBe(a.n);
  expect(b.shape).toEqual(a.shape);
  expect(b.blocksize).toBe(a.blocksize);
  expect(Buffer.from(b.packed).equals(Buffer.from(a.packed))).toBe(true);
  expectBitEqual(dequantizeNf4(b), dequantizeNf4(a));
}

describe('bitsandbytes tensors', () => {
  const x = normalSamples(300 * 71, 3, 0.02);

  it('writes the bitsandbytes key set with double quant', () => {
    const s = quantizeNf4(x, { shape: [300, 71] });
    const t = toBnbTensors(P, s, 'bfloat16');
    const w = `${P}.weight`;
    expect(t.map((e) => [e.name, e.dtype, e.shape])).toEqual([
      [w, 'U8', [10650, 1]],
      [`${w}.absmax`, 'U8', [333]],
      [`${w}.quant_map`, 'F32', [16]],
      [`${w}.nested_absmax`, 'F32', [2]],
      [`${w}.nested_quant_map`, 'F32', [256]],
      [`${w}.quant_state.bitsandbytes__nf4`, 'U8', [t.at(-1)!.data.length]],
    ]);
    const json = new TextDecoder().decode(t.at(-1)!.data);
    expect(json).toMatch(
      /^\{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": \[300, 71\], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": [0-9.e+-]+\}$/,
    );
    expect(Object.is(Math.fround(JSON.parse(json).nested_offset), s.doubleQuant!.offset)).toBe(true);
  });

  it('writes the nested offset as Python does and leaves nested keys out without double quant', () => {
    const s = quantizeNf4(Float32Array.of(1, -1), { doubleQuant: true });
    expect(quantStateJson(s, 'float16')).toBe(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.0}',
    );
    const plain = quantizeNf4(x, { shape: [300, 71], doubleQuant: false, blocksize: 128 });
    expect(quantStateJson(plain, 'bfloat16')).toBe('{"quant_type": "nf4", "blocksize": 128, "dtype": "bfloat16", "shape": [300, 71]}');
    const names = toBnbTensors(P, plain, 'bfloat16').map((e) => `${e.name}:${e.dtype}`);
    expect(names).toEqual([`${P}.weight:U8`, `${P}.weight.absmax:F32`, `${P}.weight.quant_map:F32`, `${P}.weight.quant_state.bitsandbytes__nf4:U8`]);
  });

  it.each([true, false])('round-trips through toBnbTensors / fromBnbTensors (doubleQuant %s)', (doubleQuant) => {
    const s = quantizeNf4(x, { shape: [300, 71], doubleQuant });
    const back = fromBnbTensors(P, lookup(toBnbTensors(P, s, 'float32')));
    expect(back.dtype).toBe('float32');
    expectSameState(s, back);
    if (doubleQuant) {
      expect(Object.is(back.doubleQuant!.offset, s.doubleQuant!.offset)).toBe(true);
      expect(back.absmax).toBeUndefined();
    } else {
      expectBitEqual(back.absmax!, s.absmax!);
      expect(back.doubleQuant).toBeUndefined();
    }
  });

  it('records the dtype of the quantized weight (as QuantState.as_dict records A.dtype) and reads back any of them', () => {
    expect(['F32', 'F16', 'BF16'].map(quantStateDtypeOf)).toEqual(['float32', 'float16', 'bfloat16']);
    const s = quantizeNf4(x, { shape: [300, 71] });
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const tensors = toBnbTensors(P, s, dtype);
      expect(new TextDecoder().decode(tensors.at(-1)!.data)).toContain(`"dtype": "${dtype}", "shape": [300, 71]`);
      const back = fromBnbTensors(P, lookup(tensors));
      expect(back.dtype).toBe(dtype);
      expectSameState(s, back);
    }
  });

  it('names the missing or malformed key', () => {
    const s = quantizeNf4(x, { shape: [300, 71] });
    const tensors = toBnbTensors(P, s, 'float32');
    const without = (name: string): BnbTensor[] => tensors.filter((t) => t.name !== name);
    const replace = (name: string, patch: Partial<BnbTensor>): BnbTensor[] =>
      tensors.map((t) => (t.name === name ? { ...t, ...patch } : t));
    const w = `${P}.weight`;
    for (const key of [w, `${w}.absmax`, `${w}.quant_map`, `${w}.nested_absmax`, `${w}.nested_quant_map`, `${w}.quant_state.bitsandbytes__nf4`]) {
      expect(() => fromBnbTensors(P, lookup(without(key)))).toThrow(`missing tensor "${key}"`);
    }
    expect(() => fromBnbTensors(P, lookup(replace(`${w}.absmax`, { dtype: 'F32' })))).toThrow(`"${w}.absmax": dtype F32, expected U8`);
    expect(() => fromBnbTensors(P, lookup(replace(w, { shape: [10, 1], data: new Uint8Array(10) })))).toThrow(`"${w}": 10 values`);
    const json = (text: string): BnbTensor[] => replace(`${w}.quant_state.bitsandbytes__nf4`, {
      data: new TextEncoder().encode(text), shape: [new TextEncoder().encode(text).length],
    });
    expect(() => fromBnbTensors(P, lookup(json('{"quant_type": "fp4"}')))).toThrow(/bitsandbytes__nf4: "quant_type" must be "nf4"/);
    expect(() => fromBnbTensors(P, lookup(json('not json')))).toThrow(/bitsandbytes__nf4: not UTF-8 JSON/);
    expect(() => fromBnbTensors(P, lookup(json('{"quant_type": "nf4", "blocksize": 48, "dtype": "bfloat16", "shape": [1]}'))))
      .toThrow(/blocksize must be a power of two/);
    const torchDtype = '{"quant_type": "nf4", "blocksize": 64, "dtype": "torch.float16", "shape": [300, 71], '
      + `"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": ${s.doubleQuant!.offset}}`;
    expect(fromBnbTensors(P, lookup(json(torchDtype))).dtype).toBe('float16');
    const wrongMap = new Uint8Array(64);
    expect(() => fromBnbTensors(P, lookup(replace(`${w}.quant_map`, { data: wrongMap })))).toThrow(/quant_map.*not the NF4 code table/);
  });
});
