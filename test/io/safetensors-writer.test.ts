import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fromFloat32, type DType } from '../../src/io/dtypes.js';
import { WeightFileError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { layoutOrder, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/io/safetensors-writer.js';
import { DTYPE_SIZES } from '../../src/io/dtypes.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-stw-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function headerOf(file: string): { len: number; json: Record<string, unknown> } {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return { len, json: JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown> };
}

const floats = Float32Array.from([0, 1.5, -2.25, 2 ** -15, 65280, -0.0, 2 ** -24, 7]); // exact in F16 and BF16
const samples: TensorToWrite[] = [
  { name: 'f32', dtype: 'F32', shape: [2, 4], data: bytesOf(floats) },
  { name: 'f16', dtype: 'F16', shape: [4, 2], data: fromFloat32(floats, 'F16') },
  { name: 'bf16', dtype: 'BF16', shape: [8], data: fromFloat32(floats, 'BF16') },
  { name: 'u8', dtype: 'U8', shape: [3], data: Uint8Array.from([0, 127, 255]) },
  { name: 'i32', dtype: 'I32', shape: [1, 3], data: bytesOf(Int32Array.from([-(2 ** 31), 0, 2 ** 31 - 1])) },
  { name: 'i64', dtype: 'I64', shape: [2], data: bytesOf(BigInt64Array.from([-1099511627776n, 4503599627370496n])) },
];

describe('writeSafetensors', () => {
  it('round-trips F32, F16, BF16, U8, I32, I64 with metadata, laid out by element size then name, to a spec-conformant file', async () => {
    const file = path.join(dir, 'm.safetensors');
    await writeSafetensors(file, samples, { format: 'pt', note: 'héllo' });
    const { len, json } = headerOf(file);
    expect(len % 8).toBe(0);
    const dataBytes = samples.reduce((s, t) => s + (t.data as Uint8Array).byteLength, 0);
    expect(fs.statSync(file).size).toBe(8 + len + dataBytes);
    expect(json.__metadata__).toEqual({ format: 'pt', note: 'héllo' });
    // Data is contiguous in header order, which is the reference writer's: element size descending, then name.
    const order = ['i64', 'f32', 'i32', 'bf16', 'f16', 'u8'];
    expect(Object.keys(json).filter((k) => k !== '__metadata__')).toEqual(order);
    let at = 0;
    for (const name of order) {
      const e = json[name] as { data_offsets: [number, number] };
      expect(e.data_offsets[0]).toBe(at);
      at = e.data_offsets[1];
    }
    const st = SafetensorsFile.open(file);
    try {
      expect(st.names()).toEqual(order);
      expect(st.metadata).toEqual({ format: 'pt', note: 'héllo' });
      for (const t of samples) {
        expect(st.info(t.name)).toEqual({ name: t.name, dtype: t.dtype, shape: t.shape });
        expect(st.readBytes(t.name)).toEqual(t.data);
      }
      expect(st.readFloat32('f16')).toEqual(floats);
      expect(st.readFloat32('bf16')).toEqual(floats);
      expect([...st.readFloat32('i64')]).toEqual([-(2 ** 40), 2 ** 52]);
    } finally {
      st.close();
    }
  });

  it('starts every tensor at a multiple of its element size, whatever order and odd lengths it is given in', async () => {
    const odd = (name: string, n: number): TensorToWrite => ({ name, dtype: 'U8', shape: [n], data: new Uint8Array(n).fill(n) });
    const f = (name: string, dtype: 'F32' | 'F16' | 'BF16', n: number): TensorToWrite =>
      ({ name, dtype, shape: [n], data: fromFloat32(Float32Array.from({ length: n }, (_, i) => i - 1.5), dtype) });
    const mixed: TensorToWrite[] = [
      odd('a.quant_state', 113), f('a.quant_map', 'F32', 16), odd('a.weight', 7), f('b.bias', 'F16', 3),
      { name: 'c.i64', dtype: 'I64', shape: [1], data: bytesOf(BigInt64Array.of(-5n)) }, f('b.norm', 'BF16', 5), f('a.nested', 'F32', 1),
    ];
    const file = path.join(dir, 'mixed.safetensors');
    await writeSafetensors(file, mixed);
    const { len, json } = headerOf(file);
    expect(len % 8).toBe(0);
    for (const t of mixed) {
      const e = json[t.name] as { dtype: string; data_offsets: [number, number] };
      expect((8 + len + e.data_offsets[0]) % DTYPE_SIZES[t.dtype], t.name).toBe(0);
    }
    expect(Object.keys(json)).toEqual(['c.i64', 'a.nested', 'a.quant_map', 'b.bias', 'b.norm', 'a.quant_state', 'a.weight']);
    const st = SafetensorsFile.open(file);
    for (const t of mixed) expect(st.readBytes(t.name), t.name).toEqual(t.data);
    st.close();
    // Rust orders strings by UTF-8 bytes: "é" (c3 a9) sorts after "z", "\u{10000}" (f0 ...) after "\uffff" (ef ...).
    const names = ['z', 'é', '\u{10000}', '\uffff', 'Z'].map((name) => ({ name, dtype: 'U8' as const }));
    expect(layoutOrder(names).map((t) => t.name)).toEqual(['Z', 'z', 'é', '\uffff', '\u{10000}']);
  });

  it('aligns every tensor of every shard of a sharded write too', async () => {
    const mixed: TensorToWrite[] = Array.from({ length: 6 }, (_, i) => i % 2 === 0
      ? { name: `l.${i}.w`, dtype: 'U8', shape: [3 + i], data: new Uint8Array(3 + i).fill(i) }
      : { name: `l.${i}.s`, dtype: 'F32', shape: [2], data: bytesOf(Float32Array.of(i, -i)) });
    const res = await writeShardedSafetensors(dir, mixed, { maxShardBytes: 16 });
    expect(res.files.length).toBeGreaterThan(1);
    for (const f of res.files) {
      const { len, json } = headerOf(path.join(dir, f));
      for (const [name, e] of Object.entries(json) as [string, { dtype: keyof typeof DTYPE_SIZES; data_offsets: [number, number] }][]) {
        expect((8 + len + e.data_offsets[0]) % DTYPE_SIZES[e.dtype], `${f} ${name}`).toBe(0);
      }
    }
  });

  it('pads the header with spaces and counts UTF-8 bytes, not characters', async () => {
    const file = path.join(dir, 'u.safetensors');
    await writeSafetensors(file, [{ name: 'поле.вес', dtype: 'U8', shape: [1], data: Uint8Array.of(9) }]);
    const buf = fs.readFileSync(file);
    const len = Number(buf.readBigUInt64LE(0));
    const text = buf.subarray(8, 8 + len).toString('utf8');
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(/^ *$/.test(text.slice(text.lastIndexOf('}') + 1))).toBe(true);
    expect(buf.length).toBe(8 + len + 1);
    const st = SafetensorsFile.open(file);
    expect(st.readBytes('поле.вес')).toEqual(Uint8Array.of(9));
    st.close();
  });

  it('writes scalars, zero-size tensors and an empty file', async () => {
    const file = path.join(dir, 's.safetensors');
    await writeSafetensors(file, [
      { name: 'scalar', dtype: 'F32', shape: [], data: bytesOf(Float32Array.of(3.5)) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    ]);
    const st = SafetensorsFile.open(file);
    expect([...st.readFloat32('scalar')]).toEqual([3.5]);
    expect(st.info('empty').shape).toEqual([0, 4]);
    expect(st.readBytes('empty').byteLength).toBe(0);
    st.close();
    const none = path.join(dir, 'none.safetensors');
    await writeSafetensors(none, []);
    expect(headerOf(none).json).toEqual({});
    expect(SafetensorsFile.open(none).names()).toEqual([]);
  });

  it('calls lazy data once per tensor, while writing', async () => {
    const file = path.join(dir, 'lazy.safetensors');
    const calls: string[] = [];
    const lazy = (name: string, v: number): TensorToWrite => ({
      name, dtype: 'F32', shape: [2], data: () => { calls.push(name); return bytesOf(Float32Array.of(v, -v)); },
    });
    const pending = writeSafetensors(file, [lazy('a', 1), lazy('b', 2)]);
    expect(calls).toEqual([]);
    await pending;
    expect(calls).toEqual(['a', 'b']);
    const st = SafetensorsFile.open(file);
    expect([...st.readFloat32('b')]).toEqual([2, -2]);
    st.close();
  });

  it.each<[string, TensorToWrite]>([
    ['eager', { name: 'w', dtype: 'F32', shape: [2, 3], data: new Uint8Array(20) }],
    ['lazy', { name: 'w', dtype: 'F32', shape: [2, 3], data: () => new Uint8Array(28) }],
  ])('refuses %s data whose length does not match the shape, leaving no file', async (_kind, bad) => {
    const file = path.join(dir, 'bad.safetensors');
    const ok: TensorToWrite = { name: 'ok', dtype: 'U8', shape: [1], data: Uint8Array.of(1) };
    const err = await writeSafetensors(file, [ok, bad]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as WeightFileError).tensor).toBe('w');
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(/needs 24/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses duplicate names, a bad dtype and a bad shape', async () => {
    const file = path.join(dir, 'x.safetensors');
    const t: TensorToWrite = { name: 'a', dtype: 'U8', shape: [1], data: Uint8Array.of(1) };
    await expect(writeSafetensors(file, [t, t])).rejects.toThrow(/"a".*given twice/);
    await expect(writeSafetensors(file, [{ ...t, dtype: 'F8' as DType }])).rejects.toThrow(/unknown dtype "F8"/);
    await expect(writeSafetensors(file, [{ ...t, shape: [-1] }])).rejects.toThrow(/bad shape/);
    expect(fs.existsSync(file)).toBe(false);
  });
});
