/**
 * Buffers of the native engine as TypeScript holds them: typed handles, uploads and downloads, and
 * a caching pool so activations of one micro-batch reuse the memory of the last (allocation and
 * zero-filling of hundreds of megabytes per step would otherwise show in the step time).
 */
import { DTYPE, type BufferId, type NativeAddon, type NativeDType } from './addon.js';

export interface Buf {
  readonly id: BufferId;
  readonly count: number;
  readonly dtype: NativeDType;
}

type Host = Float32Array | Uint8Array | Int32Array;

export class NativeDevice {
  /** freed buffers by "dtype:count", reused by the next alloc of that size */
  private readonly pool = new Map<string, Buf[]>();

  constructor(readonly addon: NativeAddon) {}

  alloc(dtype: NativeDType, count: number): Buf {
    const cached = this.pool.get(`${dtype}:${count}`)?.pop();
    if (cached) return cached;
    return { id: this.addon.alloc(DTYPE[dtype], count), count, dtype };
  }

  f32(count: number): Buf {
    return this.alloc('f32', count);
  }

  /** A new buffer holding `data`. */
  upload(data: Host): Buf {
    const dtype: NativeDType = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u8';
    const b = this.alloc(dtype, data.length);
    this.addon.write(b.id, data, 0);
    return b;
  }

  /** Writes `data` at the start of `b`. */
  write(b: Buf, data: Host, offset = 0): void {
    this.addon.write(b.id, data, offset);
  }

  read(b: Buf, count = b.count, offset = 0): Float32Array {
    const out = new Float32Array(count);
    this.addon.read(b.id, out, offset);
    return out;
  }

  /** Returns `b` to the pool (its contents are garbage from now on). */
  release(...bufs: (Buf | undefined)[]): void {
    for (const b of bufs) {
      if (!b) continue;
      const key = `${b.dtype}:${b.count}`;
      const list = this.pool.get(key);
      if (list) list.push(b);
      else this.pool.set(key, [b]);
    }
  }

  /** Frees `b` for good (weights, or buffers of sizes that will not come again). */
  free(...bufs: (Buf | undefined)[]): void {
    for (const b of bufs) if (b) this.addon.free(b.id);
  }

  /** Frees every pooled buffer. */
  trim(): void {
    for (const list of this.pool.values()) for (const b of list) this.addon.free(b.id);
    this.pool.clear();
  }

  memory(): { live: number; peak: number } {
    return this.addon.memoryStats();
  }
}
