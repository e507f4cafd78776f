import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WeightFileError } from '../../src/io/errors.js';
import { PICKLE_LIMITS, PyTuple, unpickle } from '../../src/io/pickle.js';
import { MAX_PICKLE_BYTES, TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';
import { PickleWriter } from '../helpers/torch-save.js';
import { writeZip, type ZipRecord } from '../../scripts/fuzz/zip.js';

const FILE = '/models/x/data.pkl';

function refusal(bytes: Uint8Array): string {
  try {
    unpickle(bytes, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(WeightFileError);
    return (err as Error).message;
  }
  throw new Error('unpickled without error');
}

function repeat(prefix: readonly number[], op: readonly number[], n: number, suffix: readonly number[] = [0x2e]): Uint8Array {
  const out = new Uint8Array(prefix.length + op.length * n + suffix.length);
  out.set(prefix, 0);
  for (let i = 0; i < n; i++) out.set(op, prefix.length + i * op.length);
  out.set(suffix, prefix.length + op.length * n);
  return out;
}

describe('unpickle: resources are bounded by what a state dict needs', () => {
  const saved = { ...PICKLE_LIMITS };
  afterEach(() => { Object.assign(PICKLE_LIMITS, saved); });

  it('refuses DUP and LONG4, which torch.save never writes (the weights_only loader refuses them too)', () => {
    expect(refusal(repeat([0x80, 2, 0x4e], [0x32], 300_000))).toMatch(/DUP at byte 3: never written by torch\.save/);
    expect(refusal(Uint8Array.of(0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0xff, 1, 0x2e))).toMatch(/LONG4 at byte 2/);
  });

  it('bounds the stack at its real limit (1M NONEs)', () => {
    expect(refusal(repeat([0x80, 2], [0x4e], PICKLE_LIMITS.maxStack + 1))).toMatch(/stack deeper than 1000000 at byte 1000002/);
  });

  it('bounds the stack for EMPTY_LIST and MARK floods', () => {
    PICKLE_LIMITS.maxStack = 1000;
    expect(refusal(repeat([0x80, 2], [0x5d], 5000))).toMatch(/stack deeper than 1000/);
    expect(refusal(repeat([0x80, 2], [0x28], 5000))).toMatch(/stack deeper than 1000/);
  });

  it('bounds the memo (MEMOIZE and sparse LONG_BINPUT)', () => {
    PICKLE_LIMITS.maxMemo = 1000;
    expect(refusal(repeat([0x80, 4, 0x4e], [0x94], 5000))).toMatch(/more than 1000 memo entries/);
    const sparse: number[] = [];
    for (let k = 0; k < 5000; k++) sparse.push(0x72, k & 0xff, (k >> 8) & 0xff, 0x10, 0);
    expect(refusal(repeat([0x80, 2, 0x4e, ...sparse], [], 0))).toMatch(/more than 1000 memo entries/);
    // Re-putting the same key does not grow the memo.
    expect(unpickle(repeat([0x80, 2, 0x4e], [0x71, 3], 5000), FILE)).toBe(null);
  });

  it('bounds the values built: one list grown by APPEND, a dict by SETITEM', () => {
    PICKLE_LIMITS.maxValues = 10_000;
    expect(refusal(repeat([0x80, 2, 0x5d, 0x71, 0], [0x68, 0, 0x61], 20_000))).toMatch(/more than 10000 values/);
    expect(refusal(repeat([0x80, 2, 0x7d], [0x4b, 1, 0x4e, 0x73], 20_000))).toMatch(/more than 10000 values/);
  });

  it('finds the last MARK without scanning the stack (200k marks, 200k TUPLEs)', () => {
    const t0 = Date.now();
    const ops: number[] = [0x80, 2, 0x4e];
    for (let i = 0; i < 200_000; i++) ops.push(0x4e, 0x28); // NONE MARK: marks spread over a deep stack
    for (let i = 0; i < 200_000; i++) ops.push(0x74, 0x86); // TUPLE TUPLE2: each pops one mark
    ops.push(0x86, 0x2e);
    expect(unpickle(Uint8Array.from(ops), FILE)).toBeInstanceOf(PyTuple);
    expect(Date.now() - t0).toBeLessThan(60_000); // a scan per mark: 2e10 steps, many minutes
  });

  it('refuses BUILD on a plain dict (torch allows it on OrderedDict, Tensor and Parameter only)', () => {
    expect(refusal(Uint8Array.of(0x80, 2, 0x7d, 0x7d, 0x62, 0x2e))).toMatch(/BUILD on dict is not supported/);
  });
});

describe('TorchCheckpointFile: hostile containers and views', () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-pklbound-')); });
  afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  const stateDict = (numel: number, size: number[], stride: number[]): Uint8Array => {
    const w = new PickleWriter().proto(2).op(0x7d).put().str2('t').global('torch._utils', '_rebuild_tensor_v2');
    w.tuple(6, () => {
      w.tuple(5, () => { w.str2('storage').global('torch', 'FloatStorage').str2('0').str2('cpu').int(numel); });
      w.op(0x51).int(0).intTuple(size).intTuple(stride).bool(false).op(0x7d);
    });
    return w.op(0x52, 0x73, 0x2e).bytes();
  };
  const zipFile = (name: string, records: ZipRecord[]): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, writeZip(records));
    return file;
  };
  const refused = async (file: string): Promise<string> => {
    const err = await TorchCheckpointFile.open(file).then((f) => { f.close(); return undefined; }, (e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as Error).message).toContain(file);
    return (err as Error).message;
  };

  it('refuses a stride-0 view that would expand 4 bytes into 8 GB, and keeps a small broadcast', async () => {
    const big = zipFile('stride0.bin', [{ name: 'a/data.pkl', data: stateDict(1, [2 ** 31], [0]) }, { name: 'a/data/0', data: new Uint8Array(4) }]);
    expect(await refused(big)).toMatch(/tensor "t": view of shape \(2147483648\) with stride \(0\) repeats the 1 elements.*\.contiguous\(\)/);
    const small = zipFile('bcast.bin', [{ name: 'a/data.pkl', data: stateDict(3, [4, 3], [0, 1]) }, { name: 'a/data/0', data: new Uint8Array(new Float32Array([1, 2, 3]).buffer) }]);
    const f = await TorchCheckpointFile.open(small);
    expect([...f.readFloat32('t')]).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    f.close();
  });

  it('refuses a data.pkl declared larger than the bound before inflating it', async () => {
    const file = zipFile('bigpkl.bin', [{ name: 'a/data.pkl', data: Uint8Array.of(0x80, 2, 0x7d, 0x2e), deflate: true, declaredSize: MAX_PICKLE_BYTES + 1 }]);
    expect(await refused(file)).toMatch(/a\/data\.pkl is 67108865 bytes, more than the 67108864 allowed/);
  });

  it('stops a deflated data.pkl that inflates past its declared size', async () => {
    const file = zipFile('liar.bin', [{ name: 'a/data.pkl', data: new Uint8Array(1 << 20).fill(0x4e), deflate: true, declaredSize: 100 }]);
    expect(await refused(file)).toMatch(/cannot read a\/data\.pkl: too many bytes in the stream/);
  });
});
