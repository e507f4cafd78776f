/**
 * Test-only writer of PyTorch zip checkpoints, byte-compatible with what torch.save produces for a
 * state dict: pickle protocol 2 in `<archive>/data.pkl` (OrderedDict + _rebuild_tensor_v2 with
 * ('storage', torch.<T>Storage, key, 'cpu', numel) persistent ids, memoized like CPython's pickler),
 * raw storages in `<archive>/data/<key>`, `byteorder`, `version`, all STORED, with each record's data
 * aligned to 64 bytes through a padding extra field in the local header only (as torch's writer does).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import yazl from 'yazl';
import { DTYPE_SIZES, numel, type DType } from '../../src/io/dtypes.js';

const STORAGE_CLASS: Readonly<Partial<Record<DType, string>>> = {
  F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage', F64: 'DoubleStorage',
  I64: 'LongStorage', I32: 'IntStorage', I16: 'ShortStorage', I8: 'CharStorage', U8: 'ByteStorage', BOOL: 'BoolStorage',
};

export interface TorchStorageSpec {
  readonly key: string;
  readonly dtype: DType;
  readonly numel: number;
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface TorchTensorSpec {
  readonly name: string;
  readonly storage: string;
  readonly shape: readonly number[];
  /** Defaults to row-major contiguous. */
  readonly stride?: readonly number[];
  readonly storageOffset?: number;
  readonly requiresGrad?: boolean;
}

export interface TorchSaveOptions {
  /** 'ordered-dict' (module.state_dict(), with its `_metadata` set by BUILD) or 'dict' (HF shards). */
  readonly container?: 'ordered-dict' | 'dict';
  /** Nest the state dict as {wrapIn: sd, "epoch": 3} (training checkpoints). */
  readonly wrapIn?: string;
  /** Contents of the byteorder record; null leaves it out (torch < 1.10 did). */
  readonly byteorder?: string | null;
  /** Deflate the data records (torch never does; for testing the refusal). */
  readonly compressData?: boolean;
  /** Folder name inside the zip; torch uses the file's base name. */
  readonly archiveName?: string;
}

export interface SimpleTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Uint8Array | (() => Uint8Array);
}

/** torch.save(state_dict) where every tensor owns a contiguous storage (storage keys "0", "1", ...). */
export async function torchSaveStateDict(file: string, tensors: Iterable<SimpleTensor>, options: TorchSaveOptions = {}): Promise<void> {
  const storages: TorchStorageSpec[] = [];
  const specs: TorchTensorSpec[] = [];
  for (const t of tensors) {
    const key = String(storages.length);
    storages.push({ key, dtype: t.dtype, numel: numel(t.shape), data: t.data });
    specs.push({ name: t.name, storage: key, shape: t.shape });
  }
  await torchSave(file, storages, specs, options);
}

export async function torchSave(file: string, storages: readonly TorchStorageSpec[], tensors: readonly TorchTensorSpec[], options: TorchSaveOptions = {}): Promise<void> {
  const archive = options.archiveName ?? path.basename(file).replace(/\.[^.]*$/, '');
  const byKey = new Map(storages.map((s) => [s.key, s]));
  const pkl = stateDictPickle(tensors, byKey, options);
  const records: ZipRecord[] = [{ name: `${archive}/data.pkl`, data: pkl }];
  if (options.byteorder !== null) records.push({ name: `${archive}/byteorder`, data: ascii(options.byteorder ?? 'little') });
  for (const s of [...storages].sort((a, b) => a.key.localeCompare(b.key, 'en', { numeric: true }))) {
    records.push({ name: `${archive}/data/${s.key}`, data: s.data, compress: options.compressData, expectBytes: s.numel * DTYPE_SIZES[s.dtype] });
  }
  records.push({ name: `${archive}/version`, data: ascii('3\n') });
  records.push({ name: `${archive}/.data/serialization_id`, data: ascii('1234567890123456789012345678901234567890') });
  if (options.compressData) await writeZipYazl(file, records);
  else writeAlignedZip(file, records);
}

/** A zip whose data.pkl calls `module.name(arg)` when unpickled by Python: GLOBAL + REDUCE. */
export async function writeMaliciousCheckpoint(file: string, module: string, name: string, arg: string, opts: { stackGlobal?: boolean } = {}): Promise<void> {
  writeAlignedZip(file, [
    { name: 'archive/data.pkl', data: maliciousPickle(module, name, arg, opts) },
    { name: 'archive/byteorder', data: ascii('little') },
    { name: 'archive/version', data: ascii('3\n') },
  ]);
}

export function maliciousPickle(module: string, name: string, arg: string, opts: { stackGlobal?: boolean } = {}): Uint8Array {
  const w = new PickleWriter();
  w.proto(opts.stackGlobal ? 4 : 2);
  if (opts.stackGlobal) {
    w.str(module);
    w.str(name);
    w.op(0x93); // STACK_GLOBAL
    w.str(arg);
  } else {
    w.global(module, name);
    w.str2(arg);
  }
  w.op(0x85); // TUPLE1
  w.op(0x52); // REDUCE
  w.op(0x2e); // STOP
  return w.bytes();
}

/** Minimal pickle protocol 2 emitter with CPython-like memoization (BINPUT after each new object). */
export class PickleWriter {
  private chunks: number[] = [];
  private memoSize = 0;
  private readonly memoized = new Map<string, number>();

  op(...bytes: number[]): this {
    for (const b of bytes) this.chunks.push(b);
    return this;
  }

  raw(b: Uint8Array): this {
    for (const x of b) this.chunks.push(x);
    return this;
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }

  proto(v = 2): this { return this.op(0x80, v); }

  put(): this {
    const i = this.memoSize++;
    return i < 256 ? this.op(0x71, i) : this.op(0x72, ...le32(i));
  }

  get(i: number): this {
    return i < 256 ? this.op(0x68, i) : this.op(0x6a, ...le32(i));
  }

  /** Emit once, then fetch from the memo, like CPython does for the same object. */
  private memo(key: string, emit: () => void): this {
    const at = this.memoized.get(key);
    if (at !== undefined) return this.get(at);
    emit();
    this.memoized.set(key, this.memoSize);
    return this.put();
  }

  global(module: string, name: string): this {
    return this.memo(`g:${module}.${name}`, () => this.op(0x63).raw(ascii(`${module}\n${name}\n`)));
  }

  str(s: string): this {
    return this.memo(`s:${s}`, () => {
      const b = new TextEncoder().encode(s);
      if (b.length < 256) this.op(0x8c, b.length).raw(b); // SHORT_BINUNICODE (protocol 4)
      else this.op(0x58, ...le32(b.length)).raw(b);
    });
  }

  /** Protocol-2 strings are always BINUNICODE. */
  str2(s: string): this {
    return this.memo(`s:${s}`, () => {
      const b = new TextEncoder().encode(s);
      this.op(0x58, ...le32(b.length)).raw(b);
    });
  }

  int(n: number): this {
    if (Number.isInteger(n) && n >= 0 && n < 256) return this.op(0x4b, n);
    if (Number.isInteger(n) && n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...le32(n));
    return this.op(0x8a).long1(BigInt(n));
  }

  private long1(v: bigint): this {
    const out: number[] = [];
    let x = v;
    for (;;) {
      out.push(Number(x & 0xffn));
      x >>= 8n;
      if ((x === 0n && !(out[out.length - 1]! & 0x80)) || (x === -1n && out[out.length - 1]! & 0x80)) break;
    }
    return this.op(out.length, ...out);
  }

  bool(b: boolean): this { return this.op(b ? 0x88 : 0x89); }
  none(): this { return this.op(0x4e); }
  float(f: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, f, false);
    return this.op(0x47).raw(b);
  }

  /** A tuple of items emitted by `items`, with CPython's opcode choice by length. */
  tuple(n: number, items: () => void): this {
    if (n === 0) return this.op(0x29);
    if (n > 3) this.op(0x28);
    items();
    this.op(n === 1 ? 0x85 : n === 2 ? 0x86 : n === 3 ? 0x87 : 0x74);
    return this.put();
  }

  intTuple(xs: readonly number[]): this {
    return this.tuple(xs.length, () => { for (const x of xs) this.int(x); });
  }

  emptyOrderedDict(): this {
    this.global('collections', 'OrderedDict');
    this.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
    return this.put();
  }

  /** SETITEMS in batches of 1000, SETITEM for a batch of one (as CPython's _batch_setitems). */
  items(entries: readonly (readonly [() => void, () => void])[]): this {
    for (let i = 0; i < entries.length; i += 1000) {
      const batch = entries.slice(i, i + 1000);
      if (batch.length > 1) this.op(0x28);
      for (const [k, v] of batch) { k(); v(); }
      this.op(batch.length > 1 ? 0x75 : 0x73);
    }
    return this;
  }
}

function stateDictPickle(tensors: readonly TorchTensorSpec[], storages: ReadonlyMap<string, TorchStorageSpec>, options: TorchSaveOptions): Uint8Array {
  const w = new PickleWriter();
  w.proto(2);
  const emitStateDict = (): void => {
    const ordered = (options.container ?? 'ordered-dict') === 'ordered-dict';
    if (ordered) w.emptyOrderedDict();
    else w.op(0x7d).put();
    w.items(tensors.map((t) => [() => w.str2(t.name), () => emitTensor(w, t, storages)] as const));
    if (ordered) {
      // state_dict()._metadata = OrderedDict({'': {'version': 1}}), restored through BUILD.
      w.op(0x7d).put();
      w.items([[() => w.str2('_metadata'), () => {
        w.emptyOrderedDict();
        w.items([[() => w.str2(''), () => { w.op(0x7d).put(); w.items([[() => w.str2('version'), () => w.int(1)]]); }]]);
      }]]);
      w.op(0x62); // BUILD
    }
  };
  if (options.wrapIn !== undefined) {
    w.op(0x7d).put();
    w.items([
      [() => w.str2(options.wrapIn!), emitStateDict],
      [() => w.str2('epoch'), () => w.int(3)],
    ]);
  } else {
    emitStateDict();
  }
  w.op(0x2e);
  return w.bytes();
}

function emitTensor(w: PickleWriter, t: TorchTensorSpec, storages: ReadonlyMap<string, TorchStorageSpec>): void {
  const s = storages.get(t.storage);
  if (!s) throw new Error(`tensor ${t.name}: no storage ${t.storage}`);
  const cls = STORAGE_CLASS[s.dtype];
  if (!cls) throw new Error(`tensor ${t.name}: torch has no typed storage for ${s.dtype}`);
  w.global('torch._utils', '_rebuild_tensor_v2');
  w.tuple(6, () => {
    w.tuple(5, () => {
      w.str2('storage');
      w.global('torch', cls);
      w.str2(s.key);
      w.str2('cpu');
      w.int(s.numel);
    });
    w.op(0x51); // BINPERSID
    w.int(t.storageOffset ?? 0);
    w.intTuple(t.shape);
    w.intTuple(t.stride ?? contiguousStride(t.shape));
    w.bool(t.requiresGrad ?? false);
    w.emptyOrderedDict(); // backward_hooks
  });
  w.op(0x52).put(); // REDUCE
}

export function contiguousStride(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) { out[i] = s; s *= shape[i]!; }
  return out;
}

interface ZipRecord {
  readonly name: string;
  readonly data: Uint8Array | (() => Uint8Array);
  readonly compress?: boolean;
  readonly expectBytes?: number;
}

function materialize(r: ZipRecord): Uint8Array {
  const data = typeof r.data === 'function' ? r.data() : r.data;
  if (r.expectBytes !== undefined && data.byteLength !== r.expectBytes) throw new Error(`${r.name}: ${data.byteLength} bytes, expected ${r.expectBytes}`);
  return data;
}

/** STORED zip, written record by record; local headers carry an "FB" extra field padding data to 64 bytes. */
function writeAlignedZip(file: string, records: readonly ZipRecord[]): void {
  const fd = fs.openSync(file, 'w');
  try {
    let pos = 0;
    const central: Uint8Array[] = [];
    for (const r of records) {
      const data = materialize(r);
      if (data.byteLength > 0xfffffffe || pos > 0xfffffffe) throw new Error('test zip writer does not do zip64');
      const name = ascii(r.name);
      const crc = zlib.crc32(data) >>> 0;
      const pad = (64 - ((pos + 30 + name.length + 4) % 64)) % 64;
      const extra = new Uint8Array(4 + pad);
      const ev = new DataView(extra.buffer);
      ev.setUint16(0, 0x4246, true); // "FB"
      ev.setUint16(2, pad, true);
      const local = new Uint8Array(30 + name.length + extra.length);
      const lv = new DataView(local.buffer);
      lv.setUint32(0, 0x04034b50, true);
      lv.setUint16(4, 20, true);
      lv.setUint16(8, 0, true); // STORED
      lv.setUint32(14, crc, true);
      lv.setUint32(18, data.byteLength, true);
      lv.setUint32(22, data.byteLength, true);
      lv.setUint16(26, name.length, true);
      lv.setUint16(28, extra.length, true);
      local.set(name, 30);
      local.set(extra, 30 + name.length);
      const cen = new Uint8Array(46 + name.length);
      const cv = new DataView(cen.buffer);
      cv.setUint32(0, 0x02014b50, true);
      cv.setUint16(4, 20, true);
      cv.setUint16(6, 20, true);
      cv.setUint32(16, crc, true);
      cv.setUint32(20, data.byteLength, true);
      cv.setUint32(24, data.byteLength, true);
      cv.setUint16(28, name.length, true);
      cv.setUint32(42, pos, true);
      cen.set(name, 46);
      central.push(cen);
      writeAll(fd, local, pos);
      pos += local.length;
      writeAll(fd, data, pos);
      pos += data.byteLength;
    }
    const cdStart = pos;
    for (const c of central) { writeAll(fd, c, pos); pos += c.length; }
    const eocd = new Uint8Array(22);
    const dv = new DataView(eocd.buffer);
    dv.setUint32(0, 0x06054b50, true);
    dv.setUint16(8, central.length, true);
    dv.setUint16(10, central.length, true);
    dv.setUint32(12, pos - cdStart, true);
    dv.setUint32(16, cdStart, true);
    writeAll(fd, eocd, pos);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done, position + done);
}

async function writeZipYazl(file: string, records: readonly ZipRecord[]): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const r of records) zip.addBuffer(Buffer.from(materialize(r)), r.name, { compress: r.compress === true });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(file);
    out.on('close', () => resolve());
    out.on('error', reject);
    zip.outputStream.on('error', reject).pipe(out);
  });
}

function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
