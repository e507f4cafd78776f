import * as fs from 'node:fs';
import { DTYPE_SIZES, isDType, numel, type DType } from './dtypes.js';
import { WeightFileError } from './errors.js';
import { firstDuplicateKey } from './json-duplicates.js';
import { openForReading, readFully } from './positional-read.js';
import { TensorMap, type TensorInfo } from './tensor-source.js';

/** Largest header accepted, as the reference implementation (MAX_HEADER_SIZE in the safetensors crate). */
export const MAX_HEADER_BYTES = 100_000_000;

interface Entry extends TensorInfo {
  readonly begin: number;
  readonly end: number;
}

/** A safetensors file opened for reading tensor by tensor (positional reads, nothing mapped whole). */
export class SafetensorsFile extends TensorMap<Entry> {
  private fd: number | undefined;

  private constructor(
    file: string, fd: number, private readonly dataStart: number, entries: Map<string, Entry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    super(file, entries);
    this.fd = fd;
  }

  static open(file: string): SafetensorsFile {
    const fd = openForReading(file);
    try {
      const { entries, metadata, dataStart } = parseHeader(file, fd);
      return new SafetensorsFile(file, fd, dataStart, entries, metadata);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Byte offset of the tensor's data in the file and its length. */
  span(name: string): { offset: number; length: number } {
    const e = this.entry(name);
    return { offset: this.dataStart + e.begin, length: e.end - e.begin };
  }

  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const length = e.end - e.begin;
    const out = new Uint8Array(length);
    readFully(this.location, this.handle(), out, this.dataStart + e.begin, name);
    return out;
  }

  override close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private handle(): number {
    if (this.fd === undefined) throw new WeightFileError(this.location, 'file is closed');
    return this.fd;
  }
}

function parseHeader(file: string, fd: number): { entries: Map<string, Entry>; metadata: Record<string, string>; dataStart: number } {
  const size = fs.fstatSync(fd).size;
  if (size < 8) throw new WeightFileError(file, `too short for a safetensors file (${size} bytes, need at least 8)`);
  const lenBuf = new Uint8Array(8);
  readFully(file, fd, lenBuf, 0);
  const declared = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new WeightFileError(file, `header length ${declared} is over the ${MAX_HEADER_BYTES} bytes the safetensors format allows (file has ${size} bytes)`);
  }
  const headerLen = Number(declared);
  if (8 + headerLen > size) {
    throw new WeightFileError(file, `bad header length ${headerLen} (file has ${size} bytes)`);
  }
  const headerBytes = new Uint8Array(headerLen);
  readFully(file, fd, headerBytes, 8);
  // As the reference reader: the header starts with "{" (no BOM, no blank), is UTF-8 JSON, and has no
  // key twice (JSON.parse would silently keep the last of two).
  if (headerBytes[0] !== 0x7b) {
    const bom = headerBytes[0] === 0xef && headerBytes[1] === 0xbb && headerBytes[2] === 0xbf;
    throw new WeightFileError(file, `header does not start with "{"${bom ? ' (it starts with a UTF-8 byte order mark)' : headerLen === 0 ? ' (it is empty)' : ` (first byte 0x${headerBytes[0]!.toString(16).padStart(2, '0')})`}`);
  }
  let text: string;
  let header: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
    header = JSON.parse(text);
  } catch (err) {
    throw new WeightFileError(file, `header is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new WeightFileError(file, 'header is not a JSON object');
  }
  const dup = firstDuplicateKey(text);
  if (dup !== undefined) {
    throw new WeightFileError(file, `header has the key ${JSON.stringify(dup.key)} twice${dup.path ? ` in "${dup.path}"` : ''}; refusing an ambiguous header`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, raw);
      continue;
    }
    entries.set(name, parseEntry(file, name, raw));
  }
  const sorted = [...entries.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) throw new WeightFileError(file, `data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (which ends at ${cursor})`, e.name);
    if (e.begin > cursor) throw new WeightFileError(file, `hole in the data before offset ${e.begin} (previous tensor ends at ${cursor})`, e.name);
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    throw new WeightFileError(file, cursor > dataLen
      ? `truncated: tensors need ${cursor} data bytes but the file has ${dataLen}`
      : `${dataLen - cursor} trailing bytes after the last tensor`);
  }
  return { entries, metadata, dataStart };
}

function parseMetadata(file: string, raw: unknown): Record<string, string> {
  if (raw === null) return {}; // the reference reads it as an Option: null is "no metadata"
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new WeightFileError(file, '__metadata__ is not an object');
  const entries = Object.entries(raw as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw new WeightFileError(file, `__metadata__["${k}"] is not a string`);
  }
  // fromEntries defines own properties, so a "__proto__" key stays a key instead of a prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEntry(file: string, name: string, raw: unknown): Entry {
  if (typeof raw !== 'object' || raw === null) throw new WeightFileError(file, 'header entry is not an object', name);
  const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !isDType(dtype)) {
    throw new WeightFileError(file, `unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`, name);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new WeightFileError(file, `bad shape ${JSON.stringify(shape)}`, name);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
    throw new WeightFileError(file, `bad data_offsets ${JSON.stringify(offsets)}`, name);
  }
  const [begin, end] = offsets as [number, number];
  const expected = numel(shape as number[]) * DTYPE_SIZES[dtype as DType];
  if (end - begin !== expected) {
    throw new WeightFileError(file, `shape ${JSON.stringify(shape)} of ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`, name);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}
