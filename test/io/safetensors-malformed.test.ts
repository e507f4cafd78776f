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
    expect(openError(raw('array.safetensors', '[1, 2]', 0)).message).toMatch(/header does not start with "\{"/);
  });

  it('non-string metadata', () => {
    expect(openError(raw('meta.safetensors', { __metadata__: { n: 3 } }, 0)).message).toMatch(/__metadata__\["n"\] is not a string/);
  });

  it('asking for a tensor the file does not have', () => {
    const file = raw('ok2.safetensors', two, 16);
    const st = SafetensorsFile.open(file);
    expect(() => st.readBytes('c')).toThrow(`${file}: tensor "c": no such tensor`);
    st.close();
  });
});

describe('SafetensorsFile follows the reference reader (safetensors crate) on header rules', () => {
  const tensorA = '"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}';

  it('refuses a duplicated __metadata__ (the crate: duplicate field)', () => {
    const e = openError(raw('dupmeta.safetensors', `{"__metadata__": {"x": "1"}, ${tensorA}, "__metadata__": {"x": "2"}}`, 8));
    expect(e.message).toMatch(/the key "__metadata__" twice/);
  });

  it('refuses a tensor named twice, and a key twice inside __metadata__ or an entry', () => {
    const two = `{${tensorA}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}`;
    expect(openError(raw('duptensor.safetensors', two, 16)).message).toMatch(/the key "a" twice/);
    const meta = `{"__metadata__": {"k": "1", "\\u006b": "2"}, ${tensorA}}`;
    expect(openError(raw('dupmetakey.safetensors', meta, 8)).message).toMatch(/the key "k" twice in "__metadata__"/);
    const field = '{"a": {"dtype": "F32", "shape": [2], "shape": [2], "data_offsets": [0, 8]}}';
    expect(openError(raw('dupfield.safetensors', field, 8)).message).toMatch(/the key "shape" twice in "a"/);
  });

  it('does not take keys inside string values or arrays for duplicates', () => {
    const text = `{"__metadata__": {"note": "\\"a\\": 1, \\"a\\": 2", "list": "[{}]"}, ${tensorA}}`;
    const st = SafetensorsFile.open(raw('strings.safetensors', text, 8));
    expect(st.metadata['note']).toBe('"a": 1, "a": 2');
    st.close();
  });

  it('refuses a byte order mark or a blank before the header', () => {
    const bom = `\uFEFF{${tensorA}}`;
    expect(openError(raw('bom.safetensors', bom, 8)).message).toMatch(/does not start with "\{" \(it starts with a UTF-8 byte order mark\)/);
    expect(openError(raw('blank.safetensors', ` {${tensorA}}`, 8)).message).toMatch(/does not start with "\{" \(first byte 0x20\)/);
  });

  it('refuses a header length over 100,000,000 bytes before reading it', () => {
    expect(openError(raw('huge.safetensors', `{${tensorA}}`, 8, 100_000_001)).message).toMatch(/header length 100000001 is over the 100000000 bytes/);
    expect(openError(raw('u64.safetensors', `{${tensorA}}`, 8, 2 ** 53)).message).toMatch(/is over the 100000000 bytes/);
  });

  it('accepts "__metadata__": null as no metadata (the crate reads it as an Option)', () => {
    const st = SafetensorsFile.open(raw('nullmeta.safetensors', `{"__metadata__": null, ${tensorA}}`, 8));
    expect(st.metadata).toEqual({});
    expect(st.names()).toEqual(['a']);
    st.close();
  });

  it('keeps a "__proto__" metadata key as a key', () => {
    const st = SafetensorsFile.open(raw('proto.safetensors', `{"__metadata__": {"__proto__": "x"}, ${tensorA}}`, 8));
    expect(Object.keys(st.metadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(st.metadata)).toBe(Object.prototype);
    st.close();
  });

  it('opens a header of 150,000 tensors without overflowing the stack', () => {
    const n = 150_000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const st = SafetensorsFile.open(raw('many.safetensors', `{${parts.join(',')}}`, n));
    expect(st.names().length).toBe(n);
    expect(st.readBytes('t149999')).toEqual(Uint8Array.of(7));
    st.close();
  });
});
