import { freshBytesToFloat32, type DType } from './dtypes.js';
import { WeightFileError } from './errors.js';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * Random access to the tensors of one weight file or a whole checkpoint, read one tensor at a time.
 * Implementations never hold the whole file in memory.
 */
export interface TensorSource {
  /** What the names refer to (a file or a folder), for messages. */
  readonly location: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Raw little-endian bytes in the stored dtype. */
  readBytes(name: string): Uint8Array;
  /** Values converted to float32. */
  readFloat32(name: string): Float32Array;
  close(): void;
}

/**
 * A TensorSource over a map of per-tensor entries, in the map's order: the lookups, the one error for
 * a name that is not there, and float32 by conversion of the stored bytes. A subclass reads the bytes.
 */
export abstract class TensorMap<E extends TensorInfo> implements TensorSource {
  protected constructor(readonly location: string, protected readonly entries: ReadonlyMap<string, E>) {}

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape } = this.entry(name);
    return { name, dtype, shape };
  }

  abstract readBytes(name: string): Uint8Array;

  readFloat32(name: string): Float32Array {
    return freshBytesToFloat32(this.readBytes(name), this.entry(name).dtype);
  }

  close(): void {}

  protected entry(name: string): E {
    const e = this.entries.get(name);
    if (!e) throw new WeightFileError(this.location, 'no such tensor', name);
    return e;
  }
}
