import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fromFloat32, type DType } from '../../src/io/dtypes.js';
import { WeightFileError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../../src/io/safetensors-writer.js';

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
  it('round-trips F32, F16, BF16, U8, I32, I64 with metadata, in order, to a spec-conformant file', async () => {
    const file = path.join(dir, 'm.safetensors');
    await writeSafetensors(file, samples, { format: 'pt', note: 'héllo' });
    const { len, json } = headerOf(file);
    expect(len % 8).toBe(0);
    const dataBytes = samples.reduce((s, t) => s + (t.data as Uint8Array).byteLength, 0);
    expect(fs.statSync(file).size).toBe(8 + len + dataBytes);
    expect(json.__metadata__).toEqual({ format: 'pt', note: 'héllo' });
    // Data is contiguous in header order.
    let at = 0;
    for (const t of samples) {
      const e = json[t.name] as { data_offsets: [number, number] };
      expect(e.data_offsets[0]).toBe(at);
      at = e.data_offsets[1];
    }
    const st = SafetensorsFile.open(file);
    try {
      expect(st.names()).toEqual(samples.map((t) => t.name));
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
