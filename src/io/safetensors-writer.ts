import * as path from 'node:path';
import { writeAll, writeBytesAtomic, writeFileAtomic } from './atomic.js';
import { DTYPE_SIZES, isDType, numel, type DType } from './dtypes.js';
import { WeightFileError } from './errors.js';

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Raw little-endian bytes, or a function producing them when the tensor is written (one at a time). */
  readonly data: Uint8Array | (() => Uint8Array);
}

interface Planned {
  readonly tensor: TensorToWrite;
  readonly byteLength: number;
}

/**
 * Write one safetensors file atomically. Tensors are laid out as the reference (Rust) writer lays
 * them out: by element size, largest first, then by name, so that every tensor starts at an offset
 * that is a multiple of its element size (see layoutOrder). Lazy data is still produced one tensor
 * at a time, in that order.
 */
export async function writeSafetensors(
  file: string,
  tensors: Iterable<TensorToWrite>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writePlanned(file, plan(file, tensors), metadata);
}

export interface ShardOptions {
  /** Largest data size of one shard; a tensor bigger than this gets a shard of its own. */
  readonly maxShardBytes: number;
  /** `__metadata__` written into every shard. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ShardedWriteResult {
  /** Shard file names, relative to the folder. */
  readonly files: string[];
  /** The index file name, or undefined when everything fit in `model.safetensors`. */
  readonly index?: string;
  /** Sum of all tensor data bytes. */
  readonly totalSize: number;
}

export const SAFETENSORS_SINGLE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

export function shardName(k: number, n: number): string {
  return `model-${String(k).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Write `model-0000k-of-0000n.safetensors` shards plus `model.safetensors.index.json` into `dir`,
 * or a single `model.safetensors` when all tensors fit in one shard. Tensors are assigned to
 * shards greedily in the order given (so consecutive tensors stay together); within each file they
 * are then laid out as writeSafetensors does. The index is written last, after every shard is complete.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: Iterable<TensorToWrite>,
  options: ShardOptions,
): Promise<ShardedWriteResult> {
  const all = plan(path.join(dir, SAFETENSORS_INDEX), tensors);
  return writeShardedUnits(dir, all.map((p) => ({ bytes: p.byteLength, tensors: () => [p.tensor] })), options);
}

/**
 * A piece of a sharded checkpoint whose tensors are made only when its shard is written (e.g. one
 * linear quantized to several tensors): `bytes` is its planned size, used to assign shards.
 */
export interface ShardUnit {
  readonly bytes: number;
  readonly tensors: () => readonly TensorToWrite[];
}

/**
 * The sharding of writeShardedSafetensors over units: consecutive units fill a shard up to
 * maxShardBytes of planned size (a larger unit gets a shard of its own); a shard's units are made
 * just before it is written, so memory stays near one shard. `onShard` runs after each shard file.
 */
export async function writeShardedUnits(
  dir: string,
  units: readonly ShardUnit[],
  options: ShardOptions & { readonly onShard?: (written: number, total: number) => void },
): Promise<ShardedWriteResult> {
  if (!(options.maxShardBytes > 0)) throw new RangeError(`maxShardBytes must be positive, got ${options.maxShardBytes}`);
  const groups: ShardUnit[][] = [];
  let size = 0;
  for (const u of units) {
    const last = groups[groups.length - 1];
    if (!last || size + u.bytes > options.maxShardBytes) {
      groups.push([u]);
      size = u.bytes;
    } else {
      last.push(u);
      size += u.bytes;
    }
  }
  const files = groups.length <= 1 ? [SAFETENSORS_SINGLE] : groups.map((_, i) => shardName(i + 1, groups.length));
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, g] of groups.entries()) {
    const file = path.join(dir, files[i]!);
    const planned = plan(file, g.flatMap((u) => u.tensors()));
    await writePlanned(file, planned, options.metadata);
    for (const p of planned) {
      weightMap[p.tensor.name] = files[i]!;
      totalSize += p.byteLength;
    }
    options.onShard?.(i + 1, groups.length);
  }
  if (groups.length <= 1) {
    if (groups.length === 0) await writePlanned(path.join(dir, SAFETENSORS_SINGLE), [], options.metadata);
    return { files, totalSize };
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await writeBytesAtomic(path.join(dir, SAFETENSORS_INDEX), `${JSON.stringify(index, null, 2)}\n`);
  return { files, index: SAFETENSORS_INDEX, totalSize };
}

/** Check names, dtypes, shapes and (for eager data) byte lengths before anything is written. */
function plan(file: string, tensors: Iterable<TensorToWrite>): Planned[] {
  const seen = new Set<string>();
  const out: Planned[] = [];
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name === '') throw new WeightFileError(file, 'reserved or empty tensor name', t.name);
    if (seen.has(t.name)) throw new WeightFileError(file, 'tensor name given twice', t.name);
    seen.add(t.name);
    if (!isDType(t.dtype)) throw new WeightFileError(file, `unknown dtype ${JSON.stringify(t.dtype)}`, t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new WeightFileError(file, `bad shape ${JSON.stringify(t.shape)}`, t.name);
    const byteLength = numel(t.shape) * DTYPE_SIZES[t.dtype];
    if (typeof t.data !== 'function') checkLength(file, t, t.data, byteLength);
    out.push({ tensor: t, byteLength });
  }
  return out;
}

function checkLength(file: string, t: TensorToWrite, data: Uint8Array, byteLength: number): void {
  if (data.byteLength !== byteLength) {
    throw new WeightFileError(file, `data has ${data.byteLength} bytes but shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${byteLength}`, t.name);
  }
}

const utf8 = new TextEncoder();

/**
 * The order of tensors within one file: element size descending, then name (compared as UTF-8
 * bytes, as Rust compares strings), as safetensors' own writer sorts them. The header is padded
 * to a multiple of 8 and every size is at most 8, so each tensor starts aligned to its element size.
 */
export function layoutOrder<T extends { readonly name: string; readonly dtype: DType }>(tensors: readonly T[]): T[] {
  const keyed = tensors.map((t) => ({ t, size: DTYPE_SIZES[t.dtype], name: utf8.encode(t.name) }));
  keyed.sort((a, b) => b.size - a.size || Buffer.compare(a.name, b.name));
  return keyed.map((k) => k.t);
}

/** The 8-byte length prefix plus the JSON header (tensors in the order given), padded with spaces to a multiple of 8. */
function encodeHeader(tensors: readonly { name: string; dtype: DType; shape: readonly number[]; byteLength: number }[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

async function writePlanned(file: string, given: readonly Planned[], metadata?: Readonly<Record<string, string>>): Promise<void> {
  const planned = layoutOrder(given.map((p) => ({ name: p.tensor.name, dtype: p.tensor.dtype, p }))).map((k) => k.p);
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new WeightFileError(file, `metadata value for "${k}" is not a string`);
    }
  }
  const header = encodeHeader(planned.map((p) => ({ ...p.tensor, byteLength: p.byteLength })), metadata);
  await writeFileAtomic(file, async (h) => {
    let pos = 0;
    pos += await writeAll(h, header, pos, file);
    for (const p of planned) {
      const data = typeof p.tensor.data === 'function' ? p.tensor.data() : p.tensor.data;
      checkLength(file, p.tensor, data, p.byteLength);
      pos += await writeAll(h, data, pos, file);
    }
  });
}
