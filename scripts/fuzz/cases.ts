/**
 * Seeded fuzz cases for ditty's readers: mutated safetensors files, mutated torch.save zips, mutated
 * legacy (non-zip) torch.save files, hostile pickles (inside torch zips) and hostile training configs. Case `i` of a kind depends only on the
 * seed and `i`, so a failure found by the long run can be rebuilt alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yauzl from 'yauzl';
import { PickleWriter, torchSave } from '../../test/helpers/torch-save.js';
import { caseSeed, Rng } from './rng.js';
import { writeZip, type ZipRecord } from './zip.js';

export type Kind = 'safetensors' | 'torch' | 'legacy' | 'pickle' | 'yaml';
export const KINDS: readonly Kind[] = ['safetensors', 'torch', 'legacy', 'pickle', 'yaml'];

export interface FuzzCase {
  kind: Kind;
  index: number;
  /** what was done to the base, for the report */
  note: string;
  /** the file's bytes (config text for yaml) */
  bytes: Uint8Array;
  /** `--set` overrides (yaml only) */
  overrides?: string[];
  /** the reader must refuse this case; accepting it counts as wrong data */
  mustRefuse?: boolean;
}

export interface Bases {
  safetensors: Uint8Array[];
  torch: ZipRecord[][];
  /** legacy-format files written by real torch.save (test/fixtures/torch/, scripts/make-torch-fixtures.py) */
  legacy: Uint8Array[];
  yaml: string[];
}

// ---------------------------------------------------------------- bases

function safetensorsFile(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  let text = JSON.stringify(header);
  text = text.padEnd(Math.ceil(text.length / 8) * 8, ' ');
  const json = Buffer.from(text);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function safetensorsBases(): Uint8Array[] {
  const bytes = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + k) & 0xff);
  return [
    safetensorsFile({
      __metadata__: { format: 'pt' },
      'emb.weight': { dtype: 'F32', shape: [4, 3], data_offsets: [0, 48] },
      'ln.bias': { dtype: 'F16', shape: [3], data_offsets: [48, 54] },
      'head.weight': { dtype: 'BF16', shape: [2, 3], data_offsets: [54, 66] },
    }, bytes(66, 1)),
    safetensorsFile({
      a: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
      b: { dtype: 'U8', shape: [0], data_offsets: [16, 16] },
      c: { dtype: 'F64', shape: [], data_offsets: [16, 24] },
      d: { dtype: 'I8', shape: [1, 1, 5], data_offsets: [24, 29] },
    }, bytes(29, 2)),
    safetensorsFile({ __metadata__: null, x: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, bytes(32, 3)),
  ];
}

async function zipRecords(file: string): Promise<ZipRecord[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const out: ZipRecord[] = [];
  try {
    for await (const e of zip.eachEntry()) {
      const chunks: Buffer[] = [];
      for await (const c of await zip.openReadStreamPromise(e)) chunks.push(c as Buffer);
      out.push({ name: e.fileName, data: new Uint8Array(Buffer.concat(chunks)) });
    }
  } finally {
    zip.close();
  }
  return out;
}

async function torchBases(): Promise<ZipRecord[][]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-fuzz-base-'));
  try {
    const f32 = (n: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => i * 0.5).buffer);
    const a = path.join(dir, 'a.bin');
    await torchSave(a, [
      { key: '0', dtype: 'F32', numel: 12, data: f32(12) },
      { key: '1', dtype: 'F16', numel: 4, data: new Uint8Array(8).fill(0x3c) },
    ], [
      { name: 'w', storage: '0', shape: [3, 4] },
      { name: 'wT', storage: '0', shape: [4, 3], stride: [1, 4] },
      { name: 'b', storage: '1', shape: [4] },
    ]);
    const b = path.join(dir, 'b.bin');
    await torchSave(b, [{ key: '0', dtype: 'BF16', numel: 6, data: new Uint8Array(12).fill(0x40) }],
      [{ name: 'model.x', storage: '0', shape: [2, 3] }], { container: 'dict', wrapIn: 'state_dict', archiveName: 'archive' });
    return [await zipRecords(a), await zipRecords(b)];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function yamlBases(): string[] {
  const folder = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'configs');
  const shipped = fs.existsSync(folder) ? fs.readdirSync(folder).filter((f) => f.endsWith('.yaml')).sort().map((f) => fs.readFileSync(path.join(folder, f), 'utf8')) : [];
  return [
    'model:\n  name_or_path: org/model\ndata:\n  dataset: org/data\n  file: train.jsonl\ntraining:\n  max_steps: 10\n',
    ...shipped,
  ];
}

export async function makeBases(): Promise<Bases> {
  return { safetensors: safetensorsBases(), torch: await torchBases(), legacy: legacyBases(), yaml: yamlBases() };
}

function legacyBases(): Uint8Array[] {
  // scripts/fuzz/ under vitest, dist/scripts/fuzz/ in the long run: the repository is 2 or 3 levels up
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = [2, 3].map((up) => path.join(here, ...Array<string>(up).fill('..'), 'test', 'fixtures', 'torch')).find((d) => fs.existsSync(d));
  if (dir === undefined) throw new Error(`test/fixtures/torch not found above ${here}`);
  return ['legacy-dtypes.bin', 'legacy-views.bin', 'legacy-keep-vars.bin'].map((f) => new Uint8Array(fs.readFileSync(path.join(dir, f))));
}

/** A size for the long run, or its small stand-in for the in-suite run (set by makeCase). */
let big: <T>(full: T, small: T) => T = (full) => full;

// ---------------------------------------------------------------- byte mutations

function flip(rng: Rng, b: Uint8Array, from = 0, to = b.length): Uint8Array {
  const out = Uint8Array.from(b);
  const n = 1 + rng.int(8);
  for (let i = 0; i < n && to > from; i++) {
    const at = from + rng.int(to - from);
    out[at] = rng.bool(0.3) ? rng.pick([0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x2e, 0x28]) : out[at]! ^ (1 << rng.int(8));
  }
  return out;
}

function truncate(rng: Rng, b: Uint8Array): Uint8Array {
  return b.slice(0, rng.int(b.length));
}

function appendJunk(rng: Rng, b: Uint8Array): Uint8Array {
  const junk = Uint8Array.from({ length: 1 + rng.int(64) }, () => rng.int(256));
  return Buffer.concat([b, junk]);
}

// ---------------------------------------------------------------- safetensors

function headerOf(b: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(Buffer.from(b).readBigUInt64LE(0));
  return { header: JSON.parse(Buffer.from(b.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>, data: b.subarray(8 + n) };
}

function withLength(text: string, data: Uint8Array, declared?: bigint): Uint8Array {
  const json = Buffer.from(text);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(declared ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function oddValue(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => -1, () => 1.5, () => 2 ** 53, () => 2 ** 64, () => '3', () => null, () => [], () => [1, 2, 3], () => {},
    () => rng.int(100), () => [rng.int(10), rng.int(10)], () => [-4, 8], () => [1e308], () => 'F32', () => 'F8_E4M3',
    () => [2 ** 31, 2 ** 31, 2 ** 31], () => true, () => ({ a: 1 }),
  ])();
}

function mutateSafetensors(rng: Rng, base: Uint8Array): { bytes: Uint8Array; note: string; mustRefuse?: boolean } {
  const { header, data } = headerOf(base);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const text = JSON.stringify(header);
  const hlen = Number(Buffer.from(base).readBigUInt64LE(0));
  switch (rng.int(14)) {
    case 0: return { bytes: flip(rng, base), note: 'flip bytes anywhere' };
    case 1: return { bytes: flip(rng, base, 8, 8 + hlen), note: 'flip header bytes' };
    case 2: return { bytes: flip(rng, base, 0, 8), note: 'flip length prefix' };
    case 3: return { bytes: truncate(rng, base), note: 'truncate' };
    case 4: return { bytes: appendJunk(rng, base), note: 'append junk', mustRefuse: true };
    case 5: {
      const declared = rng.pick([0n, 1n, 7n, BigInt(hlen - 1), BigInt(hlen + 1), 100_000_000n, 100_000_001n, 2n ** 63n, 2n ** 64n - 1n]);
      return { bytes: withLength(text, data, declared), note: `length prefix ${declared}`, mustRefuse: declared !== BigInt(text.length) };
    }
    case 6: {
      const h = structuredClone(header);
      const name = rng.pick(names);
      const entry = h[name] as Record<string, unknown>;
      const field = rng.pick(['dtype', 'shape', 'data_offsets']);
      entry[field] = oddValue(rng);
      return { bytes: withLength(JSON.stringify(h), data), note: `${name}.${field} = ${JSON.stringify(entry[field])}` };
    }
    case 7: {
      const h = structuredClone(header);
      const name = rng.pick(names);
      delete (h[name] as Record<string, unknown>)[rng.pick(['dtype', 'shape', 'data_offsets'])];
      return { bytes: withLength(JSON.stringify(h), data), note: 'drop a field', mustRefuse: true };
    }
    case 8: {
      const dupKey = rng.pick([...names, '__metadata__']);
      const dupText = `${text.slice(0, -1)},${JSON.stringify(dupKey)}:${JSON.stringify(header[dupKey] ?? { a: 'b' })}}`;
      // Adding __metadata__ to a header that has none is no duplicate.
      return { bytes: withLength(dupText, data), note: `duplicate key ${dupKey}`, mustRefuse: dupKey in header };
    }
    case 9: {
      const pre = rng.pick(['\uFEFF', ' ', '\n', '\t']);
      return { bytes: withLength(pre + text, data), note: `prefix ${JSON.stringify(pre)}`, mustRefuse: true };
    }
    case 10: {
      const h = structuredClone(header);
      h['__metadata__'] = rng.pick<unknown>([null, 3, 'x', [], { k: 1 }, { k: 'v', __proto__x: 'y' }, { ['__proto__']: 'p' }]);
      return { bytes: withLength(JSON.stringify(h), data), note: `__metadata__ = ${JSON.stringify(h['__metadata__'])}` };
    }
    case 11: {
      const depth = rng.pick([100, 10_000, big(200_000, 20_000)]);
      const deep = `${text.slice(0, -1)},"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      return { bytes: withLength(deep, data), note: `nesting ${depth} deep`, mustRefuse: true };
    }
    case 12: {
      const n = rng.pick([1000, big(120_000, 5000)]);
      const parts = Array.from({ length: n }, (_, i) => `"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
      return { bytes: withLength(`{${parts.join(',')}}`, new Uint8Array(n)), note: `${n} tensors` };
    }
    default: {
      const h = structuredClone(header);
      const [a, b] = [rng.pick(names), rng.pick(names)];
      const ea = h[a] as Record<string, unknown>;
      const eb = h[b] as Record<string, unknown>;
      [ea['data_offsets'], eb['data_offsets']] = [eb['data_offsets'], ea['data_offsets']];
      return { bytes: withLength(JSON.stringify(h), data), note: `swap offsets of ${a} and ${b}` };
    }
  }
}

// ---------------------------------------------------------------- torch zips

function pickleRecord(records: readonly ZipRecord[]): number {
  return records.findIndex((r) => r.name.endsWith('/data.pkl'));
}

function mutateTorch(rng: Rng, base: readonly ZipRecord[]): { bytes: Uint8Array; note: string; mustRefuse?: boolean } {
  const bytes = writeZip(base);
  const recs = (): ZipRecord[] => base.map((r) => ({ ...r }));
  const cdStart = Buffer.from(bytes).readUInt32LE(bytes.length - 6);
  switch (rng.int(13)) {
    case 0: return { bytes: flip(rng, bytes), note: 'flip bytes anywhere' };
    case 1: return { bytes: flip(rng, bytes, cdStart, bytes.length), note: 'flip central directory bytes' };
    case 2: return { bytes: flip(rng, bytes, bytes.length - 22, bytes.length), note: 'flip end-of-directory bytes' };
    case 3: return { bytes: flip(rng, bytes, 0, 30), note: 'flip the first local header' };
    case 4: return { bytes: truncate(rng, bytes), note: 'truncate' };
    case 5: {
      const r = recs();
      const i = rng.int(r.length);
      const copy = { ...r[i]!, data: flip(rng, r[i]!.data.length ? r[i]!.data : Uint8Array.of(1)) };
      r.splice(rng.int(r.length + 1), 0, copy);
      return { bytes: writeZip(r), note: `duplicate record ${r[i]!.name}`, mustRefuse: true };
    }
    case 6: {
      const r = recs();
      const i = rng.int(r.length);
      const evil = rng.pick(['../evil', '/abs/data.pkl', 'C:/x', 'a\\b', `${r[i]!.name.split('/')[0]}/../${r[i]!.name}`, '']);
      r[i] = { ...r[i]!, name: evil };
      return { bytes: writeZip(r), note: `rename ${base[i]!.name} to ${JSON.stringify(evil)}` };
    }
    case 7: {
      const r = recs();
      const i = rng.int(r.length);
      r[i] = { ...r[i]!, deflate: true };
      return { bytes: writeZip(r), note: `deflate ${r[i]!.name}` };
    }
    case 8: {
      const r = recs();
      const i = rng.int(r.length);
      const size = r[i]!.data.length + rng.pick([-7, -1, 1, 64, 2 ** 31]);
      r[i] = { ...r[i]!, declaredSize: Math.max(0, Math.min(size, 0xffffffff)), deflate: rng.bool() };
      return { bytes: writeZip(r), note: `declared size of ${r[i]!.name} ${size} (real ${base[i]!.data.length})` };
    }
    case 9: {
      const r = recs();
      const p = pickleRecord(r);
      r[p] = { ...r[p]!, data: flip(rng, r[p]!.data) };
      return { bytes: writeZip(r), note: 'flip data.pkl bytes' };
    }
    case 10: {
      const r = recs();
      const p = pickleRecord(r);
      r[p] = { ...r[p]!, data: truncate(rng, r[p]!.data) };
      return { bytes: writeZip(r), note: 'truncate data.pkl' };
    }
    case 11: {
      const r = recs();
      r.splice(rng.int(r.length), 1);
      return { bytes: writeZip(r), note: 'drop a record' };
    }
    default: {
      const at = rng.int(bytes.length);
      const junk = Uint8Array.from({ length: 1 + rng.int(32) }, () => rng.int(256));
      return { bytes: Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]), note: 'insert junk bytes' };
    }
  }
}

// ---------------------------------------------------------------- legacy torch files

function mutateLegacy(rng: Rng, base: Uint8Array): { bytes: Uint8Array; note: string } {
  // the pickles take most of these small files; the storages are the tail
  const pickles = Math.floor(base.length * 0.7);
  switch (rng.int(6)) {
    case 0: return { bytes: flip(rng, base), note: 'flip bytes anywhere' };
    case 1: return { bytes: flip(rng, base, 0, pickles), note: 'flip pickle bytes' };
    case 2: return { bytes: flip(rng, base, pickles, base.length), note: 'flip storage bytes' };
    case 3: return { bytes: truncate(rng, base), note: 'truncate' };
    case 4: return { bytes: appendJunk(rng, base), note: 'append junk' };
    default: {
      const at = rng.int(base.length);
      const junk = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      return { bytes: Buffer.concat([base.subarray(0, at), junk, base.subarray(at)]), note: 'insert junk bytes' };
    }
  }
}

// ---------------------------------------------------------------- hostile pickles

const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

function repeat(op: readonly number[], n: number): Uint8Array {
  const out = new Uint8Array(op.length * n);
  for (let i = 0; i < n; i++) out.set(op, i * op.length);
  return out;
}

function pkl(...parts: (readonly number[] | Uint8Array)[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Uint8Array.from(p)));
}

/** `op(k)` for k in [0, n), concatenated (no spread: n can be large). */
function each(n: number, op: (k: number) => readonly number[]): Uint8Array {
  const out: number[] = [];
  for (let k = 0; k < n; k++) for (const b of op(k)) out.push(b);
  return Uint8Array.from(out);
}

/** A state dict holding one tensor view (offset, size, stride) over a FloatStorage of `numel` elements. */
function viewPickle(numel: number, offset: number, size: readonly number[], stride: readonly number[]): Uint8Array {
  const w = new PickleWriter().proto(2).op(0x7d).put().str2('t').global('torch._utils', '_rebuild_tensor_v2');
  w.tuple(6, () => {
    w.tuple(5, () => { w.str2('storage').global('torch', 'FloatStorage').str2('0').str2('cpu').int(numel); });
    w.op(0x51).int(offset).intTuple(size).intTuple(stride).bool(false).op(0x7d);
  });
  return w.op(0x52, 0x73, 0x2e).bytes();
}

const PAYLOADS: readonly [string, string, boolean][] = [
  ['os', 'system', false], ['posix', 'system', false], ['nt', 'system', false], ['builtins', 'eval', false],
  ['builtins', 'exec', false], ['__builtin__', 'eval', false], ['subprocess', 'Popen', false], ['subprocess', 'check_output', true],
  ['builtins', 'getattr', true], ['runpy', '_run_code', false], ['shutil', 'rmtree', false], ['webbrowser', 'open', true],
];

interface Hostile { note: string; pickle: Uint8Array; deflate?: boolean; declaredSize?: number }

/** Hostile pickle `i`: resource bombs at several sizes, code-running payloads, and bad tensor views. */
function hostilePickle(rng: Rng, i: number): Hostile {
  const scale = rng.pick([1e3, 1e5, big(3e6, 2e5)]);
  const families: (() => Hostile)[] = [
    () => ({ note: `DUP x${scale}`, pickle: pkl([0x80, 2, 0x4e], repeat([0x32], scale), [0x2e]) }),
    () => ({ note: `DUP x${big(40e6, 2e6)} deflated`, pickle: pkl([0x80, 2, 0x4e], repeat([0x32], big(40e6, 2e6)), [0x2e]), deflate: true }),
    () => ({ note: `MEMOIZE x${scale * 2}`, pickle: pkl([0x80, 4, 0x4e], repeat([0x94], scale * 2), [0x2e]) }),
    () => ({ note: `LONG_BINPUT x${scale}`, pickle: pkl([0x80, 2, 0x4e], each(Math.min(scale, 2e5), (k) => [0x72, ...le32(k * 7919)]), [0x2e]) }),
    () => ({ note: `EMPTY_LIST x${scale * 4}`, pickle: pkl([0x80, 2], repeat([0x5d], scale * 4), [0x2e]) }),
    () => ({ note: `APPEND x${scale * 4} to one list`, pickle: pkl([0x80, 2, 0x5d, 0x71, 0], repeat([0x68, 0, 0x61], scale * 4), [0x2e]) }),
    () => ({ note: `SETITEM x${scale}`, pickle: pkl([0x80, 2, 0x7d], each(Math.min(scale, 2e5), (k) => [0x4a, ...le32(k), 0x4e, 0x73]), [0x2e]) }),
    () => ({ note: `MARK x${scale * 4}`, pickle: pkl([0x80, 2], repeat([0x28], scale * 4), [0x2e]) }),
    () => ({ note: `nested tuples x${scale}`, pickle: pkl([0x80, 2, 0x4e], repeat([0x85], scale * 4), [0x2e]) }),
    () => ({ note: 'LONG4 of 1 MB', pickle: pkl([0x80, 2, 0x8b, ...le32(1 << 20)], new Uint8Array(1 << 20).fill(0x55), [0x2e]) }),
    () => ({ note: 'LONG4 claiming 4 GB', pickle: pkl([0x80, 2, 0x8b, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]) }),
    () => ({ note: 'BINUNICODE claiming 4 GB', pickle: pkl([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff, 0x61]) }),
    () => ({ note: 'BINBYTES8 claiming 2^63', pickle: pkl([0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x61]) }),
    () => ({ note: 'data.pkl declared 2 GB', pickle: pkl([0x80, 2, 0x7d, 0x2e]), deflate: true, declaredSize: 2 ** 31 }),
    () => ({ note: 'deflated data.pkl inflating past its declared size', pickle: pkl([0x80, 2, 0x4e], repeat([0x4e, 0x30], 1e6), [0x2e]), deflate: true, declaredSize: 1000 }),
    () => ({ note: 'stride-0 view of 2^31 elements', pickle: viewPickle(1, 0, [2 ** 31], [0]) }),
    () => ({ note: 'stride-0 view 4D', pickle: viewPickle(4, 0, [1024, 1024, 64, 4], [0, 0, 0, 1]) }),
    () => ({ note: 'view numel past 2^53', pickle: viewPickle(1, 0, [2 ** 31, 2 ** 31, 2 ** 31], [0, 0, 0]) }),
    () => ({ note: 'view past its storage', pickle: viewPickle(6, 1, [2, 3], [3, 1]) }),
    () => ({ note: 'storage of 2^52 elements', pickle: viewPickle(2 ** 52, 0, [4], [1]) }),
    () => {
      const [m, n, stack] = PAYLOADS[i % PAYLOADS.length]!;
      const w = new PickleWriter().proto(stack ? 4 : 2);
      if (stack) w.str(m).str(n).op(0x93).str('touch /tmp/ditty-pwned');
      else w.global(m, n).str2('touch /tmp/ditty-pwned');
      return { note: `code payload ${m}.${n}${stack ? ' (STACK_GLOBAL)' : ''}`, pickle: w.op(0x85, 0x52, 0x2e).bytes() };
    },
    () => ({ note: 'BUILD on a plain dict', pickle: pkl([0x80, 2, 0x7d, 0x7d, 0x62, 0x2e]) }),
    () => ({ note: 'self-referencing dict', pickle: pkl([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x78, 0x68, 0, 0x73, 0x2e]) }),
  ];
  return families[i % families.length]!();
}

// ---------------------------------------------------------------- configs

function mutateYaml(rng: Rng, base: string, i: number): { text: string; overrides: string[]; note: string } {
  const lines = base.split('\n');
  switch (i % 12) {
    case 0: return { text: base, overrides: [rng.pick(['__proto__.polluted=1', 'training.__proto__.polluted=1', 'constructor.prototype.polluted=1', '__proto__=1', 'model.__proto__={polluted: 1}'])], note: 'hostile --set' };
    case 1: return { text: `${base}\n__proto__:\n  polluted: 1\n`, overrides: [], note: 'top-level __proto__' };
    case 2: return { text: base.replace(/^training:/m, 'training:\n  __proto__:\n    polluted: 1\n  constructor:\n    prototype:\n      polluted: 1'), overrides: [], note: 'training.__proto__' };
    case 3: {
      const n = rng.pick([1000, big(100_000, 20_000)]);
      return { text: `${base}\n${Array.from({ length: n }, (_, k) => `unknown_${k}: ${k}`).join('\n')}\n`, overrides: [], note: `${n} unknown keys` };
    }
    case 4: {
      const n = rng.pick([1000, big(50_000, 10_000)]);
      return { text: `${base.replace(/^training:/m, `training:\n${Array.from({ length: n }, (_, k) => `  bad_${k}: ${k}`).join('\n')}`)}`, overrides: [], note: `${n} unknown training keys` };
    }
    case 5: return { text: `a: &a [x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 12 }, (_, k) => `${String.fromCharCode(98 + k)}: &${String.fromCharCode(98 + k)} [*${String.fromCharCode(97 + k)}, *${String.fromCharCode(97 + k)}, *${String.fromCharCode(97 + k)}, *${String.fromCharCode(97 + k)}]`).join('\n')}\n`, overrides: [], note: 'alias bomb' };
    case 6: {
      const d = rng.pick([100, big(5000, 1000)]);
      return { text: `${base}\ndeep: ${'['.repeat(d)}${']'.repeat(d)}\n`, overrides: [], note: `nesting ${d}` };
    }
    case 7: {
      const out = [...lines];
      out.splice(rng.int(out.length), 1 + rng.int(3));
      return { text: out.join('\n'), overrides: [], note: 'delete lines' };
    }
    case 8: {
      const out = [...lines];
      const at = rng.int(out.length);
      out.splice(at, 0, out[rng.int(out.length)]!);
      return { text: out.join('\n'), overrides: [], note: 'duplicate a line' };
    }
    case 9: return { text: Buffer.from(flip(rng, Buffer.from(base))).toString('latin1'), overrides: [], note: 'flip bytes' };
    case 10: return { text: base, overrides: [rng.pick(['training.max_steps=-1', 'lora.r=1e400', 'x=', '=1', 'training.max_steps', 'lora.target_modules=[a, [b]]', 'data.__defineGetter__=1', 'toString=1', 'training.hasOwnProperty=1'])], note: 'odd --set' };
    default: return { text: base.replace(/: .*/g, (m) => (rng.bool(0.2) ? `: ${JSON.stringify(oddValue(rng))}` : m)), overrides: [], note: 'odd values' };
  }
}

// ---------------------------------------------------------------- the cases

/**
 * Case `index` of `kind`. `quick` (the in-suite run) keeps sizes small enough for a few seconds per
 * kind on a busy machine; the long run uses the full sizes, which reach every resource limit.
 */
export function makeCase(bases: Bases, kind: Kind, index: number, seed: number, quick = false): FuzzCase {
  const rng = new Rng(caseSeed(seed, kind, index));
  big = quick ? (_full, small) => small : (full) => full;
  switch (kind) {
    case 'safetensors': {
      const m = mutateSafetensors(rng, bases.safetensors[index % bases.safetensors.length]!);
      return { kind, index, note: m.note, bytes: m.bytes, ...(m.mustRefuse ? { mustRefuse: true } : {}) };
    }
    case 'torch': {
      const m = mutateTorch(rng, bases.torch[index % bases.torch.length]!);
      return { kind, index, note: m.note, bytes: m.bytes, ...(m.mustRefuse ? { mustRefuse: true } : {}) };
    }
    case 'legacy': {
      const m = mutateLegacy(rng, bases.legacy[index % bases.legacy.length]!);
      return { kind, index, note: m.note, bytes: m.bytes };
    }
    case 'pickle': {
      const h = hostilePickle(rng, index);
      const base = bases.torch[0]!;
      const records: ZipRecord[] = base.map((r) => (r.name.endsWith('/data.pkl')
        ? { name: r.name, data: h.pickle, ...(h.deflate ? { deflate: true } : {}), ...(h.declaredSize !== undefined ? { declaredSize: h.declaredSize } : {}) }
        : r));
      return { kind, index, note: h.note, bytes: writeZip(records) };
    }
    case 'yaml': {
      const m = mutateYaml(rng, bases.yaml[index % bases.yaml.length]!, index);
      return { kind, index, note: m.note, bytes: Buffer.from(m.text), overrides: m.overrides };
    }
  }
}
