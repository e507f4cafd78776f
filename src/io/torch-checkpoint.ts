import * as fs from 'node:fs';
import * as yauzl from 'yauzl';
import { DTYPE_SIZES, numel } from './dtypes.js';
import { WeightFileError } from './errors.js';
import { describeValue, PickleTruncatedError, PyDict, TorchTensor, unpickle, unpickleAt, type PyValue, type TorchStorage } from './pickle.js';
import { openForReading, readFully } from './positional-read.js';
import { TensorMap, type TensorInfo } from './tensor-source.js';

/**
 * data.pkl of a state dict is small (about 200 bytes per tensor: 100k tensors take ~20 MB); refuse
 * anything larger before inflating it. yauzl's validateEntrySizes stops a deflate stream that
 * inflates past the size the directory declares, so this bounds the memory inflation can take.
 * The pickles at the head of a legacy file are held to the same bound.
 */
export const MAX_PICKLE_BYTES = 64 * 1024 * 1024;
/**
 * A view that repeats storage elements (a stride of 0, or overlapping strides) is materialised by
 * readBytes; a few bytes of storage could otherwise claim gigabytes. Such views are allowed up to
 * this many materialised bytes (position_ids-style buffers are far below it), refused beyond.
 */
export const MAX_EXPANDED_VIEW_BYTES = 64 * 1024 * 1024;
const ZIP_LOCAL_MAGIC = 0x04034b50;
/** What torch.serialization's legacy format starts with: MAGIC_NUMBER, then PROTOCOL_VERSION. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** The first read of a legacy file's pickles; doubled until they fit, up to MAX_PICKLE_BYTES. */
const LEGACY_FIRST_READ = 1 << 20;
/** Keys under which training scripts commonly nest the state dict. */
const WRAPPER_KEYS = ['state_dict', 'model'] as const;

interface StoredEntry {
  /** Absolute offset of the entry's data in the file. */
  readonly dataStart: number;
  readonly size: number;
}

interface TensorEntry extends TensorInfo {
  readonly view: TorchTensor;
  readonly entry: StoredEntry;
}

/**
 * A PyTorch checkpoint read tensor by tensor: the zip format (torch.save since 1.6) or the legacy
 * format (older torch, or `_use_new_zipfile_serialization=False`). Opening reads the zip central
 * directory and data.pkl, or the legacy file's pickles (all through the safe unpickler); tensor
 * bytes are read positionally on demand, from the stored (uncompressed) `data/<key>` zip entries or
 * from the raw storages that follow the legacy pickles.
 */
export class TorchCheckpointFile extends TensorMap<TensorEntry> {
  private fd: number | undefined;

  private constructor(location: string, fd: number, tensors: Map<string, TensorEntry>) {
    super(location, tensors);
    this.fd = fd;
  }

  static async open(file: string): Promise<TorchCheckpointFile> {
    const fd = openForReading(file);
    try {
      const tensors = checkMagic(file, fd) === 'zip' ? await readIndex(file) : readLegacyIndex(file, fd);
      return new TorchCheckpointFile(file, fd, tensors);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  readBytes(name: string): Uint8Array {
    const t = this.entry(name);
    const es = DTYPE_SIZES[t.dtype];
    const { shape, stride, storageOffset } = t.view;
    const n = numel(shape);
    const out = new Uint8Array(n * es);
    if (n === 0) return out;
    const start = t.entry.dataStart + storageOffset * es;
    if (isContiguous(shape, stride)) {
      this.readAt(out, start, name);
      return out;
    }
    // A strided view: read the storage span it covers, then gather elements in row-major order.
    const span = 1 + shape.reduce((acc, d, i) => acc + (d - 1) * stride[i]!, 0);
    const src = new Uint8Array(span * es);
    this.readAt(src, start, name);
    gather(src, out, shape, stride, es);
    return out;
  }

  override close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private readAt(buf: Uint8Array, position: number, tensor: string): void {
    if (this.fd === undefined) throw new WeightFileError(this.location, 'file is closed', tensor);
    readFully(this.location, this.fd, buf, position, tensor);
  }
}

function checkMagic(file: string, fd: number): 'zip' | 'legacy' {
  const head = new Uint8Array(512);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  if (n >= 4 && new DataView(head.buffer).getUint32(0, true) === ZIP_LOCAL_MAGIC) return 'zip';
  if (n >= 2 && head[0] === 0x80 && head[1]! <= 5) return 'legacy';
  if (n >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === 'ustar') {
    throw new WeightFileError(file, 'legacy tar PyTorch format (torch < 0.4) is not supported; convert it to safetensors');
  }
  throw new WeightFileError(file, 'not a PyTorch zip checkpoint (no zip signature at the start)');
}

/**
 * Reads the zip directory and data.pkl through yauzl (on its own descriptor, which it closes).
 * Every failure inside the zip library becomes a WeightFileError naming the file.
 */
async function readIndex(file: string): Promise<Map<string, TensorEntry>> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { autoClose: false, lazyEntries: true, validateEntrySizes: true, strictFileNames: true });
  } catch (err) {
    throw new WeightFileError(file, `bad zip archive: ${(err as Error).message}`);
  }
  // yauzl reports some failures (a broken read while closing, a late directory error) as 'error'
  // events; an EventEmitter with no listener would throw them out of a callback and kill the process.
  let late: Error | undefined;
  zip.on('error', (err: Error) => { late ??= err; });
  try {
    const index = await readIndexOf(file, zip);
    if (late !== undefined) throw late;
    return index;
  } catch (err) {
    if (err instanceof WeightFileError) throw err;
    throw new WeightFileError(file, `bad zip archive: ${(err as Error).message}`);
  } finally {
    zip.close();
  }
}

async function readIndexOf(file: string, zip: yauzl.ZipFile): Promise<Map<string, TensorEntry>> {
  const entries = new Map<string, yauzl.Entry>();
  for await (const e of zip.eachEntry()) {
    // Readers disagree about which of two same-named records counts (torch takes one, a zip tool another).
    if (entries.has(e.fileName)) throw new WeightFileError(file, `zip archive has two records named ${JSON.stringify(e.fileName)}; refusing an ambiguous archive`);
    entries.set(e.fileName, e);
  }
  const prefix = archivePrefix(file, entries);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = new TextDecoder().decode(await readEntry(file, zip, byteorder, 64)).trim();
    if (order !== 'little') throw new WeightFileError(file, `byteorder is "${order}"; only little-endian checkpoints are supported`);
  }
  const pkl = await readEntry(file, zip, entries.get(`${prefix}data.pkl`)!, MAX_PICKLE_BYTES);
  const dict = stateDict(file, unpickle(pkl, `${file} (${prefix}data.pkl)`));
  const stored = new Map<string, StoredEntry>();
  for (const [name, view] of dict) {
    const key = view.storage.key;
    if (!stored.has(key)) stored.set(key, await storedEntry(file, zip, entries.get(`${prefix}data/${key}`), `${prefix}data/${key}`, name));
  }
  return tensorEntries(file, dict, stored, (key) => `storage data/${key}`);
}

/**
 * The legacy format: five pickles in a row (MAGIC_NUMBER, PROTOCOL_VERSION, sys_info, the object
 * with storages as persistent ids, the sorted list of storage keys), then for each key in that
 * order the storage: its element count as a little-endian int64, then its raw bytes.
 */
function readLegacyIndex(file: string, fd: number): Map<string, TensorEntry> {
  const size = fs.fstatSync(fd).size;
  for (let window = Math.min(LEGACY_FIRST_READ, size); ; window = Math.min(window * 2, size, MAX_PICKLE_BYTES)) {
    const head = new Uint8Array(window);
    readFully(file, fd, head, 0);
    try {
      return legacyIndexOf(file, fd, size, head);
    } catch (err) {
      if (!(err instanceof PickleTruncatedError)) throw err;
      if (window === size) throw new WeightFileError(file, `legacy PyTorch file ends inside its pickles (${err.message})`);
      if (window >= MAX_PICKLE_BYTES) throw new WeightFileError(file, `the pickles of this legacy PyTorch file take more than the ${MAX_PICKLE_BYTES} bytes allowed`);
    }
  }
}

function legacyIndexOf(file: string, fd: number, size: number, head: Uint8Array): Map<string, TensorEntry> {
  const where = `${file} (legacy format)`;
  const magic = unpickleAt(head, 0, where, true);
  if (magic.value !== LEGACY_MAGIC) throw new WeightFileError(file, `starts with a pickle of ${describeValue(magic.value)}, not torch's magic number: not a PyTorch checkpoint`);
  const protocol = unpickleAt(head, magic.end, where, true);
  if (protocol.value !== LEGACY_PROTOCOL) throw new WeightFileError(file, `legacy PyTorch format version ${describeValue(protocol.value)}; only ${LEGACY_PROTOCOL} is known`);
  const sysInfo = unpickleAt(head, protocol.end, where, true);
  const littleEndian = sysInfo.value instanceof PyDict ? sysInfo.value.map.get('little_endian') : undefined;
  if (littleEndian !== true) throw new WeightFileError(file, `sys_info says little_endian is ${describeValue(littleEndian)}; only little-endian checkpoints are supported`);
  const body = unpickleAt(head, sysInfo.end, where, true);
  const keys = unpickleAt(head, body.end, where, true);
  if (!Array.isArray(keys.value) || !keys.value.every((k): k is string => typeof k === 'string')) {
    throw new WeightFileError(file, `the storage key list is ${describeValue(keys.value)}, not a list of strings`);
  }
  // The storages follow in the order of the key list, each sized by what its persistent id declared.
  const stored = new Map<string, StoredEntry>();
  const count = new Uint8Array(8);
  let at = keys.end;
  for (const key of keys.value) {
    const storage: TorchStorage | undefined = body.storages.get(key);
    if (!storage) throw new WeightFileError(file, `storage key "${key}" is listed but no persistent id names it`);
    if (stored.has(key)) throw new WeightFileError(file, `storage key "${key}" is listed twice`);
    if (at + 8 > size) throw new WeightFileError(file, `storage "${key}" starts at byte ${at}, past the end of the file (${size} bytes)`);
    readFully(file, fd, count, at);
    const numel = new DataView(count.buffer).getBigInt64(0, true);
    if (numel !== BigInt(storage.numel)) {
      throw new WeightFileError(file, `storage "${key}" at byte ${at} holds ${numel} elements but its persistent id declares ${storage.numel}`);
    }
    const bytes = storage.numel * DTYPE_SIZES[storage.dtype];
    if (at + 8 + bytes > size) throw new WeightFileError(file, `storage "${key}" needs bytes ${at + 8}..${at + 8 + bytes} but the file has ${size}`);
    stored.set(key, { dataStart: at + 8, size: bytes });
    at += 8 + bytes;
  }
  const dict = stateDict(file, body.value);
  for (const [name, view] of dict) {
    if (!stored.has(view.storage.key)) throw new WeightFileError(file, `its storage "${view.storage.key}" is not in the file's storage key list`, name);
  }
  return tensorEntries(file, dict, stored, (key) => `storage "${key}"`);
}

/** Each tensor with the stored bytes of its storage, after checking its view fits them. */
function tensorEntries(
  file: string, dict: Map<string, TorchTensor>, stored: ReadonlyMap<string, StoredEntry>, record: (key: string) => string,
): Map<string, TensorEntry> {
  const out = new Map<string, TensorEntry>();
  for (const [name, view] of dict) {
    const key = view.storage.key;
    const entry = stored.get(key)!;
    const es = DTYPE_SIZES[view.storage.dtype];
    const need = view.storage.numel * es;
    if (entry.size < need) {
      throw new WeightFileError(file, `${record(key)} has ${entry.size} bytes but its ${view.storage.numel} ${view.storage.dtype} elements need ${need}`, name);
    }
    const n = numel(view.shape);
    if (n > view.storage.numel && (!Number.isSafeInteger(n * es) || n * es > MAX_EXPANDED_VIEW_BYTES)) {
      throw new WeightFileError(file, `view of shape (${view.shape.join(', ')}) with stride (${view.stride.join(', ')}) repeats the ${view.storage.numel} elements of ${record(key)} into ${n} (stride 0 or overlapping strides); ditty would have to materialise more than ${MAX_EXPANDED_VIEW_BYTES} bytes: re-save the tensor with .contiguous()`, name);
    }
    out.set(name, { name, dtype: view.storage.dtype, shape: view.shape, view, entry });
  }
  return out;
}

/** The `<archive>/` folder that holds data.pkl (torch names it after the file or "archive"). */
function archivePrefix(file: string, entries: Map<string, yauzl.Entry>): string {
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new WeightFileError(file, pkls.length === 0
      ? 'zip archive has no <archive>/data.pkl, so it is not a torch.save checkpoint'
      : `zip archive has several data.pkl records (${pkls.join(', ')})`);
  }
  return pkls[0]!.slice(0, -'data.pkl'.length);
}

async function readEntry(file: string, zip: yauzl.ZipFile, entry: yauzl.Entry, limit: number): Promise<Uint8Array> {
  if (entry.uncompressedSize > limit) throw new WeightFileError(file, `${entry.fileName} is ${entry.uncompressedSize} bytes, more than the ${limit} allowed`);
  if (!entry.canDecodeFileData()) throw new WeightFileError(file, `${entry.fileName} uses unsupported compression or encryption`);
  try {
    const chunks: Buffer[] = [];
    for await (const c of await zip.openReadStreamPromise(entry)) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  } catch (err) {
    throw new WeightFileError(file, `cannot read ${entry.fileName}: ${(err as Error).message}`);
  }
}

async function storedEntry(file: string, zip: yauzl.ZipFile, entry: yauzl.Entry | undefined, record: string, tensor: string): Promise<StoredEntry> {
  if (!entry) throw new WeightFileError(file, `its storage record ${record} is missing from the archive`, tensor);
  if (entry.compressionMethod !== 0 || entry.isEncrypted()) {
    throw new WeightFileError(file, `storage record ${record} is ${entry.isEncrypted() ? 'encrypted' : `compressed (method ${entry.compressionMethod})`}; torch.save stores tensor data uncompressed, re-save the checkpoint without recompressing the zip`, tensor);
  }
  if (entry.compressedSize !== entry.uncompressedSize) {
    throw new WeightFileError(file, `storage record ${record} is stored uncompressed but its zip sizes disagree (${entry.compressedSize} stored, ${entry.uncompressedSize} declared)`, tensor);
  }
  try {
    // The local header's extra field (torch pads it for 64-byte alignment) can differ from the central one.
    // yauzl refuses data that runs past the end of the file here (the sizes are equal, checked above).
    const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
    return { dataStart: fileDataStart, size: entry.uncompressedSize };
  } catch (err) {
    throw new WeightFileError(file, `bad local header for ${record}: ${(err as Error).message}`, tensor);
  }
}

/** The name -> tensor dict at the top level, or under "state_dict" / "model". */
function stateDict(file: string, top: PyValue): Map<string, TorchTensor> {
  if (!(top instanceof PyDict)) throw new WeightFileError(file, `top-level object is ${describeValue(top)}; expected a state dict of name -> tensor`);
  if (![...top.map.values()].every((v) => v instanceof TorchTensor)) {
    for (const key of WRAPPER_KEYS) {
      const inner = top.map.get(key);
      if (inner instanceof PyDict) return tensorsOf(file, inner, `"${key}" entry`);
    }
  }
  return tensorsOf(file, top, 'top-level dict');
}

function tensorsOf(file: string, dict: PyDict, where: string): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string') throw new WeightFileError(file, `${where} has a non-string key ${describeValue(k)}`);
    if (!(v instanceof TorchTensor)) {
      throw new WeightFileError(file, `${where} holds ${describeValue(v)} instead of a tensor; expected a flat state dict of name -> tensor (nested dicts are only unwrapped from a top-level "state_dict" or "model" key)`, k);
    }
    out.set(k, v);
  }
  return out;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Copy the elements of a strided view (offsets relative to `src`) into `out` in row-major order. */
function gather(src: Uint8Array, out: Uint8Array, shape: readonly number[], stride: readonly number[], es: number): void {
  const nd = shape.length;
  const inner = shape[nd - 1]!;
  const innerStep = stride[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  // Whole-element copies through typed views when the buffers allow it (they are fresh, so they do).
  const words = es === 4 || es === 2 ? es : 1;
  const S = words === 4 ? new Uint32Array(src.buffer, src.byteOffset, src.byteLength / 4)
    : words === 2 ? new Uint16Array(src.buffer, src.byteOffset, src.byteLength / 2) : src;
  const O = words === 4 ? new Uint32Array(out.buffer, out.byteOffset, out.byteLength / 4)
    : words === 2 ? new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2) : out;
  const per = es / words; // elements of S per tensor element (1 unless es is 8)
  let base = 0; // in tensor elements
  let o = 0; // in S units
  while (o < O.length) {
    for (let j = 0, s = base * per; j < inner; j++, s += innerStep * per) {
      for (let b = 0; b < per; b++) O[o++] = S[s + b]!;
    }
    // Advance the outer indices like an odometer.
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      base += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      base -= shape[d]! * stride[d]!;
      idx[d] = 0;
    }
  }
}
