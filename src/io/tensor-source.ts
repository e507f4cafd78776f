import type { DType } from './dtypes.js';

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
