/**
 * A safe unpickler for PyTorch checkpoints (the `data.pkl` of a torch.save zip, and the pickles of
 * the legacy non-zip format).
 *
 * It builds plain TypeScript values and never calls anything named by the pickle: GLOBAL and
 * STACK_GLOBAL are checked against a short allowlist of what a state dict needs (OrderedDict, the
 * torch tensor rebuild functions, the typed storage classes), and REDUCE / NEWOBJ / BUILD only apply
 * the constructors implemented below. Anything else is refused as soon as it is named.
 *
 * Resources are bounded by what a state dict needs, so a hostile pickle fails with a WeightFileError
 * instead of exhausting memory or time: the stack depth, the memo size and the number of values
 * built (every item pushed or put in a container counts). DUP and LONG4, which CPython's pickler never
 * writes for a state dict and torch's weights_only loader refuses, are refused here too.
 */
import { DTYPE_SIZES, type DType } from './dtypes.js';
import { WeightFileError } from './errors.js';

export type PyKey = string | number | bigint | boolean | null;

export type PyValue =
  | PyKey
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | TorchStorage
  | TorchTensor;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** What BUILD set on it (torch stores `_metadata` there); kept, never interpreted. */
  state: PyValue = null;
  constructor(readonly ordered: boolean) {}
}

/** A reference to an allowlisted global; only ever created for names in ALLOWED_GLOBALS. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * A storage named by a persistent id: ('storage', torch.<T>Storage, key, location, numel), with a
 * sixth item, the view metadata, in the legacy format. The location ("cpu", "cuda:0") is where the
 * storage lived when it was saved; ditty reads every storage into host memory whatever it says.
 */
export class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly location: string,
    /** Number of elements of `dtype`. */
    readonly numel: number,
  ) {}
}

/** A tensor view onto a storage, as `torch._utils._rebuild_tensor_v2` receives it. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
  ) {}
}

/** Typed storage classes torch pickles as the second item of a storage persistent id. */
const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

type Impl = (args: readonly PyValue[], fail: (msg: string) => never) => PyValue;

const CALLABLES: ReadonlyMap<string, Impl> = new Map<string, Impl>([
  ['collections.OrderedDict', orderedDict],
  ['torch._utils._rebuild_tensor_v2', (a, fail) => rebuildTensor(a, 6, fail)],
  ['torch._utils._rebuild_tensor', (a, fail) => rebuildTensor(a, 4, fail)],
  ['torch._utils._rebuild_parameter', rebuildParameter],
  ['torch._utils._rebuild_parameter_with_state', rebuildParameter],
  ['torch._tensor._rebuild_from_type_v2', rebuildFromType],
]);

/** Globals that may be named but not called: storage types and the tensor classes for _rebuild_from_type_v2. */
const MARKERS: ReadonlySet<string> = new Set([
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
  'torch.Tensor',
  'torch.nn.parameter.Parameter',
]);

export const ALLOWED_GLOBALS: readonly string[] = [...CALLABLES.keys(), ...MARKERS];

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/**
 * Unpickle `bytes` (protocols 2-5, binary opcodes only). `file` names the source in errors.
 * Storage persistent ids become TorchStorage; tensors become TorchTensor.
 */
export function unpickle(bytes: Uint8Array, file: string): PyValue {
  return new Unpickler(bytes, file, 0, false).load();
}

/** A pickle that runs past the end of the bytes it was given (the legacy reader then reads more). */
export class PickleTruncatedError extends WeightFileError {}

export interface PickleAt {
  readonly value: PyValue;
  /** offset just past this pickle's STOP */
  readonly end: number;
  /** the storages its persistent ids named, by key */
  readonly storages: ReadonlyMap<string, TorchStorage>;
}

/**
 * Unpickle the pickle that starts at `start` of `bytes` (the legacy format writes several in a row).
 * `legacy` accepts the legacy format's persistent ids, whose sixth item (a storage view) must be None.
 */
export function unpickleAt(bytes: Uint8Array, start: number, file: string, legacy: boolean): PickleAt {
  const u = new Unpickler(bytes, file, start, legacy);
  const value = u.load();
  return { value, end: u.end, storages: u.storages };
}

/**
 * Limits far above what torch.save writes for a state dict (a 100k-tensor checkpoint uses about
 * 40 values and 10 memo entries per tensor, and a stack a few thousand deep: SETITEMS batches 1000).
 */
export const PICKLE_LIMITS = {
  maxStack: 1_000_000,
  maxMemo: 4_000_000,
  maxValues: 10_000_000,
};

class Unpickler {
  private pos: number;
  private stack: Slot[] = [];
  /** Stack indices of the MARKs, innermost last (so finding the last MARK never scans the stack). */
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private values = 0;
  private readonly dv: DataView;
  readonly storages = new Map<string, TorchStorage>();

  constructor(private readonly bytes: Uint8Array, private readonly file: string, start: number, private readonly legacy: boolean) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }

  get end(): number {
    return this.pos;
  }

  private fail(msg: string): never {
    throw new WeightFileError(this.file, `pickle: ${msg}`);
  }

  private take(n: number): Uint8Array {
    if (n < 0) this.fail(`negative length at byte ${this.pos}`);
    if (this.pos + n > this.bytes.byteLength) throw new PickleTruncatedError(this.file, `pickle: truncated at byte ${this.pos} (needs ${n} more bytes)`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(): number { return this.take(1)[0]!; }
  private u16(): number { const p = this.pos; this.take(2); return this.dv.getUint16(p, true); }
  private u32(): number { const p = this.pos; this.take(4); return this.dv.getUint32(p, true); }
  private i32(): number { const p = this.pos; this.take(4); return this.dv.getInt32(p, true); }
  private u64(): number {
    const p = this.pos;
    this.take(8);
    const v = this.dv.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`length ${v} at byte ${p} is too large`);
    return Number(v);
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleTruncatedError(this.file, `pickle: unterminated line at byte ${this.pos}`);
    const s = new TextDecoder('utf-8').decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  private utf8(n: number): string {
    const at = this.pos;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.take(n));
    } catch (err) {
      if (err instanceof WeightFileError) throw err;
      return this.fail(`invalid UTF-8 string at byte ${at}`);
    }
  }

  /** Counts `n` values built; past the limit the pickle is refused (a state dict never gets near it). */
  private spend(n: number): void {
    this.values += n;
    if (this.values > PICKLE_LIMITS.maxValues) {
      this.fail(`more than ${PICKLE_LIMITS.maxValues} values at byte ${this.pos - 1}; a state dict needs far fewer (refusing to build it)`);
    }
  }

  private push(v: Slot): void {
    if (this.stack.length >= PICKLE_LIMITS.maxStack) {
      this.fail(`stack deeper than ${PICKLE_LIMITS.maxStack} at byte ${this.pos - 1}; a state dict needs far less`);
    }
    this.spend(1);
    this.stack.push(v);
  }

  private pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined) this.fail(`stack underflow at byte ${this.pos - 1}`);
    if (v === MARK) this.fail(`unexpected MARK on the stack at byte ${this.pos - 1}`);
    return v;
  }

  private top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail(`empty stack at byte ${this.pos - 1}`);
    return v;
  }

  private mark(): void {
    this.push(MARK);
    this.marks.push(this.stack.length - 1);
  }

  /** Items pushed since the last MARK, removing the mark. */
  private popMark(): PyValue[] {
    const i = this.marks.pop();
    if (i === undefined) this.fail(`no MARK for the opcode at byte ${this.pos - 1}`);
    const items = this.stack.splice(i + 1) as PyValue[];
    this.stack.pop();
    return items;
  }

  private memoPut(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= PICKLE_LIMITS.maxMemo) {
      this.fail(`more than ${PICKLE_LIMITS.maxMemo} memo entries at byte ${this.pos - 1}; a state dict needs far fewer`);
    }
    this.memo.set(i, this.top());
  }

  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo key ${i} is not set (byte ${this.pos})`);
    return this.memo.get(i)!;
  }

  private global(module: string, name: string): PyGlobal {
    const q = `${module}.${name}`;
    if (!CALLABLES.has(q) && !MARKERS.has(q)) {
      this.fail(`refusing global ${q}: only tensor globals are allowed in a weights file (${ALLOWED_GLOBALS.join(', ')}); nothing was executed`);
    }
    return new PyGlobal(module, name);
  }

  private call(fn: PyValue, args: PyValue): PyValue {
    if (!(fn instanceof PyGlobal)) this.fail(`REDUCE on ${describeValue(fn)}, not a global`);
    const impl = CALLABLES.get(fn.qualified);
    if (!impl) this.fail(`${fn.qualified} cannot be called`);
    if (!(args instanceof PyTuple)) this.fail(`REDUCE arguments for ${fn.qualified} are ${describeValue(args)}, not a tuple`);
    return impl(args.items, (msg) => this.fail(`${fn.qualified}: ${msg}`));
  }

  private setItems(target: PyValue, kv: readonly PyValue[]): void {
    if (!(target instanceof PyDict)) this.fail(`SETITEM(S) on ${describeValue(target)}`);
    if (kv.length % 2) this.fail('SETITEMS with an odd number of items');
    this.spend(kv.length);
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i]!;
      if (!isKey(k)) this.fail(`unsupported dict key type ${describeValue(k)}`);
      target.map.set(k, kv[i + 1]!);
    }
  }

  private appendItems(target: PyValue, items: readonly PyValue[]): void {
    if (!Array.isArray(target)) this.fail(`APPEND(S) on ${describeValue(target)}`);
    this.spend(items.length);
    for (const v of items) target.push(v);
  }

  private persistentLoad(pid: PyValue): TorchStorage {
    const t = pid instanceof PyTuple ? pid.items : [];
    const [tag, type, key, location, numel, view] = t;
    const form = this.legacy ? "('storage', type, key, location, numel, None)" : "('storage', type, key, location, numel)";
    if (t.length !== (this.legacy ? 6 : 5) || tag !== 'storage') this.fail(`unsupported persistent id ${describeValue(pid)} (expected ${form})`);
    // torch >= 1.0 always writes None here; a storage view comes from far older torch
    if (this.legacy && view !== null) this.fail(`storage "${String(key)}" is a view of another storage (${describeValue(view)}), written by a torch older than 1.0; re-save the checkpoint with a current torch.save`);
    if (!(type instanceof PyGlobal) || type.module !== 'torch' || !(type.name in STORAGE_DTYPES)) {
      this.fail(`unsupported storage type ${type instanceof PyGlobal ? type.qualified : describeValue(type)}`);
    }
    if (typeof key !== 'string' || typeof location !== 'string' || !isCount(numel)) {
      this.fail(`malformed storage persistent id (key ${describeValue(key)}, location ${describeValue(location)}, numel ${describeValue(numel)})`);
    }
    const dtype = STORAGE_DTYPES[type.name]!;
    const seen = this.storages.get(key);
    if (seen) {
      if (seen.dtype !== dtype) this.fail(`storage "${key}" is used as both ${seen.dtype} and ${dtype}`);
      return seen;
    }
    const s = new TorchStorage(key, dtype, location, numel);
    this.storages.set(key, s);
    return s;
  }

  load(): PyValue {
    for (;;) {
      const op = this.u8();
      switch (op) {
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: this.u64(); break; // FRAME: the frame length only matters to streaming readers
        case 0x2e: { // STOP
          const v = this.pop();
          if (this.stack.length) this.fail(`${this.stack.length} values left on the stack at STOP`);
          return v;
        }
        case 0x28: this.mark(); break; // MARK
        case 0x30: this.pop(); break; // POP
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.fail(`DUP at byte ${this.pos - 1}: never written by torch.save, and refused by torch's weights_only loader`);
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x8a: this.push(decodeLong(this.take(this.u8()))); break; // LONG1
        case 0x8b: this.fail(`LONG4 at byte ${this.pos - 1}: an integer of 256 bytes or more has no place in a state dict (torch's weights_only loader refuses it too)`);
        case 0x47: { // BINFLOAT (big-endian)
          const p = this.pos;
          this.take(8);
          this.push(this.dv.getFloat64(p, false));
          break;
        }
        case 0x58: this.push(this.utf8(this.u32())); break; // BINUNICODE
        case 0x8c: this.push(this.utf8(this.u8())); break; // SHORT_BINUNICODE
        case 0x8d: this.push(this.utf8(this.u64())); break; // BINUNICODE8
        case 0x55: this.push(latin1(this.take(this.u8()))); break; // SHORT_BINSTRING
        case 0x54: this.push(latin1(this.take(this.u32()))); break; // BINSTRING
        case 0x43: this.push(this.take(this.u8()).slice()); break; // SHORT_BINBYTES
        case 0x42: this.push(this.take(this.u32()).slice()); break; // BINBYTES
        case 0x8e: this.push(this.take(this.u64()).slice()); break; // BINBYTES8
        case 0x96: this.push(this.take(this.u64()).slice()); break; // BYTEARRAY8
        case 0x29: this.push(new PyTuple([])); break; // EMPTY_TUPLE
        case 0x85: this.push(new PyTuple([this.pop()])); break; // TUPLE1
        case 0x86: { const b = this.pop(); const a = this.pop(); this.push(new PyTuple([a, b])); break; } // TUPLE2
        case 0x87: { const c = this.pop(); const b = this.pop(); const a = this.pop(); this.push(new PyTuple([a, b, c])); break; } // TUPLE3
        case 0x74: this.push(new PyTuple(this.popMark())); break; // TUPLE
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x61: { const v = this.pop(); this.appendItems(this.top(), [v]); break; } // APPEND
        case 0x65: { const items = this.popMark(); this.appendItems(this.top(), items); break; } // APPENDS
        case 0x7d: this.push(new PyDict(false)); break; // EMPTY_DICT
        case 0x64: { const d = new PyDict(false); this.setItems(d, this.popMark()); this.push(d); break; } // DICT
        case 0x73: { const v = this.pop(); const k = this.pop(); this.setItems(this.top(), [k, v]); break; } // SETITEM
        case 0x75: { const kv = this.popMark(); this.setItems(this.top(), kv); break; } // SETITEMS
        case 0x8f: this.push([]); break; // EMPTY_SET (as a list)
        case 0x90: { const items = this.popMark(); this.appendItems(this.top(), items); break; } // ADDITEMS
        case 0x91: this.push(new PyTuple(this.popMark())); break; // FROZENSET (as a tuple)
        case 0x71: this.memoPut(this.u8()); break; // BINPUT
        case 0x72: this.memoPut(this.u32()); break; // LONG_BINPUT
        case 0x94: this.memoPut(this.memo.size); break; // MEMOIZE
        case 0x68: this.push(this.memoGet(this.u8())); break; // BINGET
        case 0x6a: this.push(this.memoGet(this.u32())); break; // LONG_BINGET
        case 0x63: { const module = this.line(); const name = this.line(); this.push(this.global(module, name)); break; } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(this.global(module, name));
          break;
        }
        case 0x52: { const args = this.pop(); const fn = this.pop(); this.push(this.call(fn, args)); break; } // REDUCE
        case 0x81: { // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PyGlobal) || cls.qualified !== 'collections.OrderedDict') {
            this.fail(`NEWOBJ of ${cls instanceof PyGlobal ? cls.qualified : describeValue(cls)} is not supported`);
          }
          this.push(this.call(cls, args));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          const obj = this.top();
          // As torch's weights_only loader: only an OrderedDict (its _metadata), a tensor or a parameter.
          if (obj instanceof PyDict && obj.ordered) obj.state = state;
          else if (!(obj instanceof TorchTensor)) this.fail(`BUILD on ${describeValue(obj)} is not supported`);
          break;
        }
        case 0x51: this.push(this.persistentLoad(this.pop())); break; // BINPERSID
        default:
          this.fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} at byte ${this.pos - 1}`);
      }
    }
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
  return s;
}

/** Little-endian two's complement integer; a number when it is safe, a bigint otherwise. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function isKey(v: PyValue): v is PyKey {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v);
}

function isCount(v: PyValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function describeValue(v: PyValue | undefined): string {
  if (v === undefined) return 'missing value';
  if (v === null) return 'None';
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof PyGlobal) return v.qualified;
  if (v instanceof TorchStorage) return `storage "${v.key}"`;
  if (v instanceof TorchTensor) return 'tensor';
  if (v instanceof Uint8Array) return `bytes(${v.byteLength})`;
  if (Array.isArray(v)) return `list(${v.length})`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return `${typeof v} ${String(v)}`;
}

function orderedDict(args: readonly PyValue[], fail: (msg: string) => never): PyValue {
  const d = new PyDict(true);
  if (args.length === 0) return d;
  const [items] = args;
  const pairs = items instanceof PyTuple ? items.items : items;
  if (args.length !== 1 || !Array.isArray(pairs)) fail('expected no arguments or one list of pairs');
  for (const p of pairs) {
    const kv = p instanceof PyTuple ? p.items : p;
    if (!Array.isArray(kv) || kv.length !== 2 || !isKey(kv[0]!)) fail('expected (key, value) pairs');
    d.map.set(kv[0] as PyKey, kv[1]!);
  }
  return d;
}

function intTuple(v: PyValue | undefined, what: string, fail: (msg: string) => never): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (!items || !items.every(isCount)) fail(`${what} must be a tuple of non-negative integers, got ${describeValue(v)}`);
  return items as number[];
}

function rebuildTensor(args: readonly PyValue[], minArgs: number, fail: (msg: string) => never): TorchTensor {
  if (args.length < minArgs) fail(`expected at least ${minArgs} arguments, got ${args.length}`);
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof TorchStorage)) fail(`first argument is ${describeValue(storage)}, not a storage`);
  if (!isCount(offset)) fail(`storage_offset ${describeValue(offset)} is not a non-negative integer`);
  const shape = intTuple(size, 'size', fail);
  const strides = intTuple(stride, 'stride', fail);
  if (shape.length !== strides.length) fail(`size has ${shape.length} dims but stride has ${strides.length}`);
  const span = shape.some((d) => d === 0) ? 0 : 1 + shape.reduce((acc, d, i) => acc + (d - 1) * strides[i]!, 0);
  if (offset + span > storage.numel) {
    fail(`view [offset ${offset}, size (${shape.join(', ')}), stride (${strides.join(', ')})] reaches element ${offset + span} of storage "${storage.key}" which has ${storage.numel}`);
  }
  if (storage.numel * DTYPE_SIZES[storage.dtype] > Number.MAX_SAFE_INTEGER) fail('storage is too large');
  return new TorchTensor(storage, offset, shape, strides, requiresGrad === true);
}

function rebuildParameter(args: readonly PyValue[], fail: (msg: string) => never): TorchTensor {
  const [data, requiresGrad] = args;
  if (!(data instanceof TorchTensor)) fail(`data is ${describeValue(data)}, not a tensor`);
  return new TorchTensor(data.storage, data.storageOffset, data.shape, data.stride, requiresGrad === true);
}

/** _rebuild_from_type_v2(func, type, args, state): only for plain tensors and parameters; state is dropped. */
function rebuildFromType(args: readonly PyValue[], fail: (msg: string) => never): PyValue {
  const [func, type, inner] = args;
  const typeName = type instanceof PyGlobal ? type.qualified : describeValue(type);
  if (typeName !== 'torch.Tensor' && typeName !== 'torch.nn.parameter.Parameter') fail(`tensor type ${typeName} is not supported`);
  const impl = func instanceof PyGlobal && func.module === 'torch._utils' ? CALLABLES.get(func.qualified) : undefined;
  if (!impl || !(inner instanceof PyTuple)) {
    fail(`expected a torch._utils rebuild function and an argument tuple, got ${describeValue(func)} and ${describeValue(inner)}`);
  }
  const t = impl(inner.items, fail);
  if (!(t instanceof TorchTensor)) fail(`${describeValue(func)} did not give a tensor`);
  return t;
}
