import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromFloat32, type DType } from '../../src/io/dtypes.js';
import { WeightFileError } from '../../src/io/errors.js';
import { TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';
import { openWeightFile } from '../../src/io/checkpoint.js';
import { maliciousPickle, PickleWriter, torchSave, torchSaveStateDict, writeMaliciousCheckpoint, type TorchSaveOptions } from '../helpers/torch-save.js';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-torch-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
const iota = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => i);

async function openError(file: string): Promise<WeightFileError> {
  const err = await TorchCheckpointFile.open(file).then((f) => { f.close(); return undefined; }, (e: unknown) => e);
  expect(err).toBeInstanceOf(WeightFileError);
  expect((err as Error).message).toContain(file);
  return err as WeightFileError;
}

describe('TorchCheckpointFile: views onto storages', () => {
  let file: string;
  beforeAll(async () => {
    file = path.join(dir, 'views.bin');
    await torchSave(file, [
      { key: '0', dtype: 'F32', numel: 24, data: bytesOf(iota(24)) },
      { key: '1', dtype: 'F16', numel: 6, data: fromFloat32(iota(6), 'F16') },
      { key: '2', dtype: 'F64', numel: 6, data: bytesOf(Float64Array.from(iota(6))) },
      { key: '3', dtype: 'I8', numel: 6, data: bytesOf(Int8Array.of(-3, -2, -1, 0, 1, 2)) },
    ], [
      { name: 'm', storage: '0', shape: [4, 6] },
      { name: 'mT', storage: '0', shape: [6, 4], stride: [1, 6] },
      { name: 'rows', storage: '0', shape: [2, 6], storageOffset: 12 },
      { name: 'cols', storage: '0', shape: [4, 2], stride: [6, 1], storageOffset: 3 },
      { name: 'perm', storage: '0', shape: [3, 2, 4], stride: [2, 1, 6] },
      { name: 'scalar', storage: '0', shape: [], stride: [], storageOffset: 23 },
      { name: 'empty', storage: '0', shape: [0, 3], stride: [3, 1] },
      { name: 'hT', storage: '1', shape: [3, 2], stride: [1, 3] },
      { name: 'dT', storage: '2', shape: [3, 2], stride: [1, 3] },
      { name: 'cT', storage: '3', shape: [3, 2], stride: [1, 3] },
    ]);
  });

  it('lists names in state dict order with dtypes and shapes', async () => {
    const f = await TorchCheckpointFile.open(file);
    expect(f.names()).toEqual(['m', 'mT', 'rows', 'cols', 'perm', 'scalar', 'empty', 'hT', 'dT', 'cT']);
    expect(f.info('mT')).toEqual({ name: 'mT', dtype: 'F32', shape: [6, 4] });
    expect(f.info('hT').dtype).toBe('F16');
    expect(f.has('nope')).toBe(false);
    f.close();
  });

  it('reads contiguous, transposed, offset and permuted views in row-major order', async () => {
    const f = await TorchCheckpointFile.open(file);
    expect(f.readFloat32('m')).toEqual(iota(24));
    // mT[i][j] = m[j][i] = 6j + i
    expect([...f.readFloat32('mT')]).toEqual(Array.from({ length: 24 }, (_, k) => 6 * (k % 4) + Math.floor(k / 4)));
    expect([...f.readFloat32('rows')]).toEqual([...iota(24)].slice(12));
    expect([...f.readFloat32('cols')]).toEqual([3, 4, 9, 10, 15, 16, 21, 22]);
    // perm[a][b][c] = storage[2a + b + 6c]
    const perm: number[] = [];
    for (let a = 0; a < 3; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 4; c++) perm.push(2 * a + b + 6 * c);
    expect([...f.readFloat32('perm')]).toEqual(perm);
    expect([...f.readFloat32('scalar')]).toEqual([23]);
    expect(f.readBytes('empty').byteLength).toBe(0);
    expect(f.readBytes('rows')).toEqual(bytesOf(iota(24).subarray(12)));
    f.close();
  });

  it('transposes 1-, 2- and 8-byte elements too', async () => {
    const f = await TorchCheckpointFile.open(file);
    const t = [0, 3, 1, 4, 2, 5];
    expect([...f.readFloat32('hT')]).toEqual(t);
    expect([...f.readFloat32('dT')]).toEqual(t);
    expect([...f.readFloat32('cT')]).toEqual(t.map((v) => v - 3));
    expect(f.readBytes('hT')).toEqual(fromFloat32(Float32Array.from(t), 'F16'));
    f.close();
  });

  it('refuses reads after close', async () => {
    const f = await TorchCheckpointFile.open(file);
    f.close();
    expect(() => f.readBytes('m')).toThrow(/file is closed/);
  });
});

describe('TorchCheckpointFile: dtypes and containers', () => {
  const cases: [DType, Uint8Array, number[]][] = [
    ['F32', bytesOf(Float32Array.of(1.5, -2)), [1.5, -2]],
    ['F16', fromFloat32(Float32Array.of(1.5, -2), 'F16'), [1.5, -2]],
    ['BF16', fromFloat32(Float32Array.of(1.5, -2), 'BF16'), [1.5, -2]],
    ['F64', bytesOf(Float64Array.of(1.5, -2)), [1.5, -2]],
    ['I64', bytesOf(BigInt64Array.of(-7n, 9007199254740991n)), [-7, 9007199254740992]],
    ['I32', bytesOf(Int32Array.of(-7, 70000)), [-7, 70000]],
    ['I16', bytesOf(Int16Array.of(-7, 300)), [-7, 300]],
    ['I8', bytesOf(Int8Array.of(-7, 100)), [-7, 100]],
    ['U8', Uint8Array.of(7, 200), [7, 200]],
    ['BOOL', Uint8Array.of(1, 0), [1, 0]],
  ];

  it('maps every torch storage type to its dtype and reads the values', async () => {
    const file = path.join(dir, 'dtypes.bin');
    await torchSaveStateDict(file, cases.map(([dtype, data]) => ({ name: `t.${dtype}`, dtype, shape: [2], data })));
    const f = await TorchCheckpointFile.open(file);
    for (const [dtype, data, values] of cases) {
      expect(f.info(`t.${dtype}`).dtype).toBe(dtype);
      expect(f.readBytes(`t.${dtype}`)).toEqual(data);
      expect([...f.readFloat32(`t.${dtype}`)]).toEqual(values);
    }
    f.close();
  });

  it.each<[string, TorchSaveOptions]>([
    ['a plain dict', { container: 'dict' }],
    ['{"state_dict": ...}', { wrapIn: 'state_dict' }],
    ['{"model": ...}', { wrapIn: 'model', container: 'dict' }],
    ['an archive named "archive" and no byteorder record', { archiveName: 'archive', byteorder: null }],
  ])('reads %s', async (_what, options) => {
    const file = path.join(dir, `c-${Object.values(options).join('-')}.bin`);
    await torchSaveStateDict(file, [{ name: 'w', dtype: 'F32', shape: [2], data: bytesOf(Float32Array.of(4, 5)) }], options);
    const f = await TorchCheckpointFile.open(file);
    expect(f.names()).toEqual(['w']);
    expect([...f.readFloat32('w')]).toEqual([4, 5]);
    f.close();
  });

  it('says where tensors were expected when the dict nests them under another key', async () => {
    const file = path.join(dir, 'nested.bin');
    await torchSaveStateDict(file, [{ name: 'w', dtype: 'U8', shape: [1], data: Uint8Array.of(1) }], { wrapIn: 'weights' });
    const e = await openError(file);
    expect(e.tensor).toBe('weights');
    expect(e.message).toMatch(/holds OrderedDict instead of a tensor.*"state_dict" or "model"/);
  });
});

describe('TorchCheckpointFile: the legacy format (real files: torch-real.test.ts)', () => {
  it('reads a legacy file whose pickles outgrow the first read (15000 views of one storage)', async () => {
    const n = 15000;
    const w = new PickleWriter().proto(2).op(0x7d).put();
    w.items(Array.from({ length: n }, (_, i) => [() => w.str2(`t${i}`), () => {
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.tuple(6, () => {
        w.tuple(6, () => { w.str2('storage').global('torch', 'FloatStorage').str2('0').str2('cpu').int(n).none(); }).op(0x51);
        w.int(i).intTuple([1]).intTuple([1]).bool(false).emptyOrderedDict();
      });
      w.op(0x52).put();
    }] as const));
    const body = w.op(0x2e).bytes();
    expect(body.length).toBeGreaterThan(1 << 20); // the reader's first read
    const head = Uint8Array.of(
      0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, // MAGIC_NUMBER
      0x80, 2, 0x4d, 0xe9, 0x03, 0x2e, // PROTOCOL_VERSION 1001
    );
    const sysInfo = new PickleWriter().proto(2).op(0x7d).put();
    sysInfo.items([[() => sysInfo.str2('little_endian'), () => sysInfo.bool(true)]]);
    const keys = new PickleWriter().proto(2).op(0x5d).put().str2('0').op(0x61, 0x2e).bytes();
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigInt64(0, BigInt(n), true);
    const file = path.join(dir, 'legacy-big.bin');
    fs.writeFileSync(file, Buffer.concat([head, sysInfo.op(0x2e).bytes(), body, keys, count, bytesOf(iota(n))]));
    const f = await TorchCheckpointFile.open(file);
    try {
      expect(f.names()).toHaveLength(n);
      expect(f.info('t12345')).toEqual({ name: 't12345', dtype: 'F32', shape: [1] });
      for (const i of [0, 12345, n - 1]) expect([...f.readFloat32(`t${i}`)]).toEqual([i]);
    } finally {
      f.close();
    }
  });
});

describe('TorchCheckpointFile: refusals', () => {
  it('refuses compressed storage records', async () => {
    const file = path.join(dir, 'deflated.bin');
    await torchSaveStateDict(file, [{ name: 'w', dtype: 'F32', shape: [64], data: new Uint8Array(256) }], { compressData: true });
    const e = await openError(file);
    expect(e.tensor).toBe('w');
    expect(e.message).toMatch(/data\/0 is compressed \(method 8\)/);
  });

  it('refuses a legacy (non-zip) file cut after its magic number (real legacy files: torch-real.test.ts)', async () => {
    const file = path.join(dir, 'legacy.bin');
    // the legacy format starts with a pickled magic number (LONG1 0x1950a86a20f9469cfc6c), then more pickles
    fs.writeFileSync(file, Uint8Array.of(0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e));
    expect((await openError(file)).message).toMatch(/legacy PyTorch file ends inside its pickles/);
  });

  it('refuses files that are neither', async () => {
    const file = path.join(dir, 'text.bin');
    fs.writeFileSync(file, 'hello world, not a checkpoint');
    expect((await openError(file)).message).toMatch(/not a PyTorch zip checkpoint/);
  });

  it('refuses a truncated zip', async () => {
    const file = path.join(dir, 'cut.bin');
    await torchSaveStateDict(file, [{ name: 'w', dtype: 'F32', shape: [256], data: new Uint8Array(1024) }]);
    fs.truncateSync(file, 700);
    expect((await openError(file)).message).toMatch(/bad zip archive/);
  });

  it('refuses big-endian checkpoints', async () => {
    const file = path.join(dir, 'big.bin');
    await torchSaveStateDict(file, [{ name: 'w', dtype: 'U8', shape: [1], data: Uint8Array.of(1) }], { byteorder: 'big' });
    expect((await openError(file)).message).toMatch(/byteorder is "big"; only little-endian/);
  });

  it('refuses a storage record shorter than the storage', async () => {
    const file = path.join(dir, 'short.bin');
    await torchSave(file, [{ key: '0', dtype: 'F32', numel: 2, data: new Uint8Array(8) }], [{ name: 'w', storage: '0', shape: [2] }]);
    // Patch the pickled numel from 2 to 3: the view then fits the storage but the record is too small.
    const buf = fs.readFileSync(file);
    const at = buf.indexOf(Buffer.from('cpu'));
    expect(buf[at + 5]).toBe(0x4b);
    buf[at + 6] = 3;
    fs.writeFileSync(file, buf);
    const e = await openError(file);
    expect(e.tensor).toBe('w');
    expect(e.message).toMatch(/storage data\/0 has 8 bytes but its 3 F32 elements need 12/);
  });

  it('refuses a missing storage record', async () => {
    const file = path.join(dir, 'missing.bin');
    await torchSave(file, [{ key: '0', dtype: 'U8', numel: 1, data: Uint8Array.of(1) }], [{ name: 'w', storage: '0', shape: [1] }], { archiveName: 'a' });
    const buf = fs.readFileSync(file);
    // Rename a/data/0 to a/data/9 in both headers (same length, so offsets stay valid).
    let at = -1;
    while ((at = buf.indexOf('a/data/0', at + 1)) >= 0) buf[at + 7] = 0x39;
    fs.writeFileSync(file, buf);
    expect((await openError(file)).message).toMatch(/tensor "w": its storage record a\/data\/0 is missing/);
  });
});

describe('TorchCheckpointFile: malicious pickles', () => {
  it.each([
    ['os', 'system', (canary: string) => `touch ${canary}`],
    ['builtins', 'eval', (canary: string) => `open(${JSON.stringify(canary)}, "w").write("pwned")`],
    ['posix', 'system', (canary: string) => `touch ${canary}`],
  ])('refuses %s.%s and runs nothing', async (module, name, payload) => {
    const canary = path.join(dir, `canary-${module}`);
    const file = path.join(dir, `evil-${module}.bin`);
    await writeMaliciousCheckpoint(file, module, name, payload(canary));
    for (const open of [TorchCheckpointFile.open, openWeightFile]) {
      const err = await open(file).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(WeightFileError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toContain(`refusing global ${module}.${name}`);
    }
    expect(fs.existsSync(canary)).toBe(false);
  });

  it('the payload is a real one: the pickle names the global and carries the command', () => {
    const bytes = Buffer.from(maliciousPickle('os', 'system', 'touch /tmp/x'));
    expect(bytes.includes('cos\nsystem\n')).toBe(true);
    expect(bytes.includes('touch /tmp/x')).toBe(true);
    expect(bytes[bytes.length - 2]).toBe(0x52); // REDUCE right before STOP
  });
});
