/**
 * Buffers of the native engine as TypeScript holds them: typed handles on one device (the CPU or
 * the CUDA device), uploads and downloads, and a caching pool so activations of one micro-batch
 * reuse the memory of the last (allocation and zero-filling of hundreds of megabytes per step would
 * otherwise show in the step time). Activations are allocated in the device's activation dtype.
 */
import { f32ToBf16, toFloat32 } from '../../io/dtypes.js';
import type { ComputeDtype } from '../engine.js';
import { DEVICE, DTYPE, type BufferId, type MemoryStats, type NativeAddon, type NativeDeviceKind, type NativeDType } from './addon.js';

export interface Buf {
  readonly id: BufferId;
  readonly count: number;
  readonly dtype: NativeDType;
}

type Host = Float32Array | Uint8Array | Int32Array;

/**
 * The dtype activations are stored in on `device` for a requested compute dtype: bf16 on cuda
 * (auto, bf16), fp32 on cuda when asked (the mode that matches the CPU to ~1e-4), fp32 on the CPU;
 * a request the device lacks falls back to fp32 and `note` says so.
 */
export function activationDtype(device: NativeDeviceKind, requested: ComputeDtype): { readonly dtype: 'f32' | 'bf16'; readonly note?: string } {
  if (device === 'cuda') {
    if (requested === 'fp16') return { dtype: 'f32', note: 'compute dtype fp16 requested; the native cuda engine has bf16 and fp32, so it computes in fp32' };
    return { dtype: requested === 'fp32' ? 'f32' : 'bf16' };
  }
  if (requested === 'bf16' || requested === 'fp16') return { dtype: 'f32', note: `compute dtype ${requested} requested; the native cpu engine computes in fp32` };
  return { dtype: 'f32' };
}

export class NativeDevice {
  /** freed buffers by "dtype:count", reused by the next alloc of that size */
  private readonly pool = new Map<string, Buf[]>();

  constructor(readonly addon: NativeAddon, readonly kind: NativeDeviceKind = 'cpu', readonly activation: 'f32' | 'bf16' = 'f32') {}

  alloc(dtype: NativeDType, count: number): Buf {
    const cached = this.pool.get(`${dtype}:${count}`)?.pop();
    if (cached) return cached;
    return { id: this.addon.alloc(DTYPE[dtype], count, DEVICE[this.kind]), count, dtype };
  }

  f32(count: number): Buf {
    return this.alloc('f32', count);
  }

  /** A buffer in the activation dtype. */
  act(count: number): Buf {
    return this.alloc(this.activation, count);
  }

  /** A new buffer holding `data`. */
  upload(data: Host): Buf {
    const dtype: NativeDType = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u8';
    const b = this.alloc(dtype, data.length);
    this.addon.write(b.id, data, 0);
    return b;
  }

  /** A new buffer in the activation dtype holding `data` (rounded to bf16 when that is the dtype). */
  uploadAct(data: Float32Array): Buf {
    if (this.activation === 'f32') return this.upload(data);
    const bits = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) bits[i] = f32ToBf16(data[i]!);
    const b = this.alloc('bf16', data.length);
    this.addon.write(b.id, bits, 0);
    return b;
  }

  /** Writes `data` at the start of `b`. */
  write(b: Buf, data: Host, offset = 0): void {
    this.addon.write(b.id, data, offset);
  }

  /** `count` values of b from `offset` as float32 (bf16 buffers are widened). */
  read(b: Buf, count = b.count, offset = 0): Float32Array {
    if (b.dtype === 'bf16') {
      const bits = new Uint16Array(count);
      this.addon.read(b.id, bits, offset);
      return toFloat32(new Uint8Array(bits.buffer), 'BF16');
    }
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

  memory(): MemoryStats {
    return this.addon.memoryStats(DEVICE[this.kind]);
  }

  resetPeak(): void {
    this.addon.resetPeak(DEVICE[this.kind]);
  }
}
