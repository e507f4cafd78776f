import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeightFileError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-stbad-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** A safetensors file from a raw header (object or text) and data; `declaredLen` overrides the length prefix. */
function raw(name: string, header: object | string, dataBytes: number, declaredLen?: number): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = Buffer.from(text.padEnd(Math.ceil(text.length / 8) * 8, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLen ?? json.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes, 7)]));
  return file;
}

function openError(file: string): WeightFileError {
  try {
    SafetensorsFile.open(file).close();
  } catch (err) {
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as Error).message).toContain(file);
    return err as WeightFileError;
  }
  throw new Error(`${file} opened without error`);
}

const two = {
  a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
  b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
};

describe('SafetensorsFile refuses malformed files, naming the file and the tensor', () => {
  it('accepts the well-formed base case', () => {
    const st = SafetensorsFile.open(raw('ok.safetensors', two, 16));
    expect(st.names()).toEqual(['a', 'b']);
    st.close();
  });

  it('truncated data', () => {
    const e = openError(raw('truncated.safetensors', two, 12));
    expect(e.message).toMatch(/truncated: tensors need 16 data bytes but the file has 12/);
  });

  it('trailing bytes after the last tensor', () => {
    expect(openError(raw('trailing.safetensors', two, 20)).message).toMatch(/4 trailing bytes/);
  });

  it('overlapping offsets', () => {
    const e = openError(raw('overlap.safetensors', { ...two, b: { ...two.b, data_offsets: [4, 12] } }, 12));
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/tensor "b".*overlap/);
  });

  it('a hole between tensors', () => {
    const e = openError(raw('hole.safetensors', { ...two, b: { ...two.b, data_offsets: [12, 20] } }, 20));
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/tensor "b".*hole/);
  });

  it('a header length beyond the file', () => {
    const e = openError(raw('badlen.safetensors', two, 16, 1 << 20));
    expect(e.message).toMatch(/bad header length 1048576/);
  });

  it('a file shorter than the length prefix', () => {
    const file = path.join(dir, 'tiny.safetensors');
    fs.writeFileSync(file, Buffer.from([1, 2, 3]));
    expect(openError(file).message).toMatch(/too short/);
  });

  it('an unknown dtype', () => {
    const e = openError(raw('dtype.safetensors', { ...two, b: { ...two.b, dtype: 'F8_E9M9' } }, 16));
    expect(e.tensor).toBe('b');
    expect(e.message).toMatch(/unknown dtype "F8_E9M9"/);
  });

  it('a shape that does not match the data size', () => {
    const e = openError(raw('shape.safetensors', { ...two, a: { ...two.a, shape: [3] } }, 16));
    expect(e.tensor).toBe('a');
    expect(e.message).toMatch(/shape \[3\] of F32 needs 12 bytes but data_offsets span 8/);
  });

  it('a header that is not JSON', () => {
    expect(openError(raw('json.safetensors', '{"a": {"dtype": "F32",', 0)).message).toMatch(/not valid UTF-8 JSON/);
  });

  it('a header that is JSON but not an object', () => {
    expect(openError(raw('array.safetensors', '[1, 2]', 0)).message).toMatch(/not a JSON object/);
  });

  it('non-string metadata', () => {
    expect(openError(raw('meta.safetensors', { __metadata__: { n: 3 } }, 0)).message).toMatch(/__metadata__\["n"\] is not a string/);
  });

  it('asking for a tensor the file does not have', () => {
    const file = raw('ok2.safetensors', two, 16);
    const st = SafetensorsFile.open(file);
    expect(() => st.readBytes('c')).toThrow(`${file}: tensor "c": no such tensor in this file`);
    st.close();
  });
});
