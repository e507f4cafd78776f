/**
 * The native engine's addon (native/, built by `npm ci`): its functions as TypeScript sees them and
 * the loader that says why it is missing. Buffers are ids into the addon's table; -1 stands for "no
 * buffer" where an argument is optional. Shapes are row-major; counts are elements.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A buffer id; -1 where an optional buffer is absent. */
export type BufferId = number;

export const DTYPE = { f32: 0, bf16: 1, u8: 2, i32: 3 } as const;
export type NativeDType = keyof typeof DTYPE;

/** Where a buffer lives: host memory (the cpu device) or the CUDA device's memory. */
export const DEVICE = { cpu: 0, cuda: 1 } as const;
export type NativeDeviceKind = keyof typeof DEVICE;

export const GELU_KIND = { erf: 0, tanh: 1, fast: 2 } as const;

/** An NF4 weight [rows = out, cols = in] in the bitsandbytes layout, as buffer ids (see native/include/ditty/nf4.h). */
export interface Nf4Handles {
  readonly packed: BufferId;
  readonly rows: number;
  readonly cols: number;
  readonly blocksize: number;
  /** f32 per block without double quant, else -1 */
  readonly absmax: BufferId;
  /** u8 per block with double quant, else -1 */
  readonly absmaxQ: BufferId;
  /** f32 per nested block with double quant, else -1 */
  readonly nestedAbsmax: BufferId;
  /** f32 [256] with double quant, else -1 */
  readonly nestedMap: BufferId;
  readonly offset: number;
  readonly nestedBlocksize: number;
  /** f32 [1] holding `offset` with double quant on the CUDA device (its kernels read it there), else -1 or absent */
  readonly offsetBuffer?: BufferId;
}

export interface BuildInfo {
  readonly simd: 'avx512' | 'avx2' | 'portable';
  readonly cpu: string;
  readonly features: readonly string[];
  readonly gemm: string;
  readonly compiler: string;
  readonly threads: number;
}

/** The addon's CUDA device (native/cuda/device.h); `reason` says why it is not available. */
export interface CudaInfo {
  /** the addon was linked with the CUDA device (built with nvcc, or the emulated build) */
  readonly built: boolean;
  readonly available: boolean;
  readonly reason?: string;
  readonly emulated?: boolean;
  readonly name?: string;
  /** compute capability, e.g. "9.0" */
  readonly capability?: string;
  readonly totalMemory?: number;
  readonly freeMemory?: number;
  /** as CUDA encodes them (13000 = 13.0); the driver's is 0 without a driver */
  readonly driverVersion?: number;
  readonly runtimeVersion?: number;
  /** the cuBLASLt library loaded, or why it could not be */
  readonly cublasLt?: string;
  readonly cublasLtLoaded?: boolean;
}

export interface MemoryStats {
  /** bytes of live buffers on the device */
  readonly live: number;
  readonly peak: number;
  readonly buffers: number;
  /** cuda: bytes the caching allocator holds from the driver (live and cached blocks), now and at most */
  readonly reserved?: number;
  readonly peakReserved?: number;
}

export interface NativeAddon {
  // buffers (native/binding/bind_buffers.cpp); device: DEVICE[...], default cpu
  alloc(dtype: number, count: number, device?: number): BufferId;
  view(id: BufferId, offset: number, count: number): BufferId;
  free(id: BufferId): void;
  write(id: BufferId, data: Float32Array | Uint16Array | Uint8Array | Int32Array, offset: number): void;
  read(id: BufferId, out: Float32Array | Uint16Array | Uint8Array | Int32Array, offset: number): void;
  fill(id: BufferId, value: number): void;
  copy(dst: BufferId, dstOffset: number, src: BufferId, srcOffset: number, count: number): void;
  memoryStats(device?: number): MemoryStats;
  resetPeak(device?: number): void;
  threads(): number;
  setThreads(n: number): void;
  buildInfo(): BuildInfo;
  cudaInfo(): CudaInfo;
  /** waits for the CUDA device's stream (timing); nothing on a build without it */
  cudaSynchronize(): void;

  // products (native/binding/bind_gemm.cpp)
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: BufferId, lda: number,
    B: BufferId, ldb: number, beta: number, C: BufferId, ldc: number): void;
  denseLinearForward(W: BufferId, bias: BufferId, out: number, inp: number, x: BufferId, rows: number, y: BufferId, accumulate: boolean): void;
  denseLinearInputGrad(W: BufferId, out: number, inp: number, dy: BufferId, rows: number, dx: BufferId, accumulate: boolean): void;
  nf4DequantizeRows(w: Nf4Handles, r0: number, r1: number, out: BufferId): void;
  nf4LinearForward(w: Nf4Handles, bias: BufferId, x: BufferId, rows: number, y: BufferId, accumulate: boolean): void;
  nf4LinearInputGrad(w: Nf4Handles, dy: BufferId, rows: number, dx: BufferId, accumulate: boolean): void;
  /**
   * returns the double-quant offset (0 without double quant); on the CUDA device double quant also
   * reads nestedMap and writes the offset into offsetBuffer (f32 [1], optional)
   */
  nf4Quantize(values: BufferId, n: number, blocksize: number, doubleQuant: boolean, nestedBlocksize: number,
    packed: BufferId, absmax: BufferId, absmaxQ: BufferId, nestedAbsmax: BufferId, nestedMap?: BufferId, offsetBuffer?: BufferId): number;
  loraForward(x: BufferId, rows: number, inp: number, out: number, r: number, A: BufferId, B: BufferId, scaling: number,
    p: number, seed: number, h: BufferId, y: BufferId): void;
  loraBackward(x: BufferId, h: BufferId, dy: BufferId, rows: number, inp: number, out: number, r: number, A: BufferId,
    B: BufferId, scaling: number, p: number, seed: number, dA: BufferId, dB: BufferId, dx: BufferId): void;

  // shared kernels (native/binding/bind_common.cpp; headCrossEntropy is bound with the products in bind_gemm.cpp)
  embeddingForward(ids: BufferId, n: number, table: BufferId, V: number, C: number, out: BufferId): void;
  layernormForward(x: BufferId, w: BufferId, b: BufferId, N: number, C: number, eps: number, out: BufferId, mean: BufferId, rstd: BufferId): void;
  layernormBackward(dy: BufferId, x: BufferId, w: BufferId, mean: BufferId, rstd: BufferId, N: number, C: number, dx: BufferId, accumulate: boolean): void;
  add(a: BufferId, b: BufferId, out: BufferId, n: number): void;
  addInplace(y: BufferId, x: BufferId, n: number): void;
  scaleInplace(x: BufferId, n: number, s: number): void;
  /** the unnormalised loss sum; dhidden (+)= gradScale * gradient when not -1 */
  headCrossEntropy(hidden: BufferId, N: number, C: number, head: BufferId, V: number, targets: BufferId, weights: BufferId,
    gradScale: number, dhidden: BufferId, accumulate: boolean, chunk: number): number;
  adamwStep(p: BufferId, g: BufferId, m: BufferId, v: BufferId, n: number, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, step: number): void;
  sumSquares(x: BufferId, n: number): number;

  // RWKV-4 (native/binding/bind_rwkv.cpp)
  timeMixForward(x: BufferId, state: BufferId, B: number, T: number, C: number, mixes: readonly BufferId[], outs: readonly BufferId[]): void;
  timeMixBackward(douts: readonly BufferId[], mixes: readonly BufferId[], B: number, T: number, C: number, dx: BufferId, accumulate: boolean): void;
  wkvForward(timeDecay: BufferId, timeFirst: BufferId, k: BufferId, v: BufferId, B: number, T: number, C: number, y: BufferId, state: BufferId): void;
  wkvBackward(timeDecay: BufferId, timeFirst: BufferId, k: BufferId, v: BufferId, dy: BufferId, B: number, T: number, C: number, dk: BufferId, dv: BufferId): void;
  sigmoidGateForward(a: BufferId, y: BufferId, out: BufferId, n: number): void;
  sigmoidGateBackward(a: BufferId, y: BufferId, dout: BufferId, da: BufferId, dy: BufferId, n: number): void;
  reluSquareForward(x: BufferId, out: BufferId, n: number): void;
  reluSquareBackward(x: BufferId, dy: BufferId, dx: BufferId, n: number): void;

  // GPT-NeoX (native/binding/bind_neox.cpp)
  qkvRotaryForward(qkv: BufferId, B: number, T: number, heads: number, d: number, R: number, base: number, offset: number,
    q: BufferId, k: BufferId, v: BufferId): void;
  qkvRotaryBackward(dq: BufferId, dk: BufferId, dv: BufferId, B: number, T: number, heads: number, d: number, R: number,
    base: number, offset: number, dqkv: BufferId): void;
  attentionForward(q: BufferId, k: BufferId, v: BufferId, B: number, H: number, T: number, S: number, d: number, out: BufferId, lse: BufferId): void;
  attentionBackward(dout: BufferId, q: BufferId, k: BufferId, v: BufferId, out: BufferId, lse: BufferId, B: number, H: number,
    T: number, d: number, dq: BufferId, dk: BufferId, dv: BufferId): void;
  geluForward(x: BufferId, out: BufferId, n: number, kind: number): void;
  geluBackward(x: BufferId, dy: BufferId, dx: BufferId, n: number, kind: number): void;
}

/** Every function of NativeAddon: a loaded file must have them all (a stale build or another file does not). */
const ADDON_FUNCTIONS = [
  'alloc', 'view', 'free', 'write', 'read', 'fill', 'copy', 'memoryStats', 'resetPeak', 'threads', 'setThreads',
  'buildInfo', 'cudaInfo', 'cudaSynchronize', 'gemm', 'denseLinearForward', 'denseLinearInputGrad', 'nf4DequantizeRows', 'nf4LinearForward',
  'nf4LinearInputGrad', 'nf4Quantize', 'loraForward', 'loraBackward', 'embeddingForward', 'layernormForward',
  'layernormBackward', 'add', 'addInplace', 'scaleInplace', 'headCrossEntropy', 'adamwStep', 'sumSquares',
  'timeMixForward', 'timeMixBackward', 'wkvForward', 'wkvBackward', 'sigmoidGateForward', 'sigmoidGateBackward',
  'reluSquareForward', 'reluSquareBackward', 'qkvRotaryForward', 'qkvRotaryBackward', 'attentionForward',
  'attentionBackward', 'geluForward', 'geluBackward',
] as const satisfies readonly (keyof NativeAddon)[];
// a compile error here names a function of NativeAddon missing from ADDON_FUNCTIONS
const everyFunctionListed: Exclude<keyof NativeAddon, (typeof ADDON_FUNCTIONS)[number]> extends never ? true : never = true;
void everyFunctionListed;

export type AddonLoad = { readonly addon: NativeAddon; readonly reason?: undefined } | { readonly addon?: undefined; readonly reason: string };

/** The package folder (holding binding.gyp), from src/ under vitest or dist/src/ once compiled. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'binding.gyp')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

let loaded: AddonLoad | undefined;

/** The addon, or why it is not there (not built at install time, or failing to load). Loaded once. */
export function loadAddon(): AddonLoad {
  if (loaded) return loaded;
  const root = packageRoot();
  const file = process.env.DITTY_NATIVE_ADDON ?? path.join(root, 'build', 'Release', 'ditty_native.node');
  const reasonFile = path.join(root, 'build', 'native-unavailable.txt');
  if (!fs.existsSync(file)) {
    if (process.env.DITTY_NATIVE_ADDON !== undefined) {
      loaded = { reason: `the native engine is not available: DITTY_NATIVE_ADDON=${file} does not exist` };
      return loaded;
    }
    const why = fs.existsSync(reasonFile) ? fs.readFileSync(reasonFile, 'utf8').trim() : 'it was not built (run `npm ci` or `npm run build:native`)';
    loaded = { reason: `the native engine is not available: ${why}` };
    return loaded;
  }
  try {
    const require = createRequire(import.meta.url);
    const module: unknown = require(file);
    const missing = ADDON_FUNCTIONS.filter((f) => typeof (module as Record<string, unknown> | null)?.[f] !== 'function');
    loaded = missing.length === 0
      ? { addon: module as NativeAddon }
      : { reason: `the native engine at ${file} lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} `
        + '(built from other sources? run `npm run build:native`)' };
  } catch (err) {
    loaded = { reason: `the native engine failed to load from ${file}: ${(err as Error).message.split('\n')[0]}` };
  }
  return loaded;
}

export type CudaStatus = { readonly usable: true; readonly info: CudaInfo } | { readonly usable: false; readonly reason: string; readonly info?: CudaInfo };

/**
 * Whether the native engine's CUDA device can run here, and in one line why not: no addon, an
 * addon built without it (build/cuda-unavailable.txt says why), no usable GPU or driver, or no cuBLASLt.
 */
export function cudaStatus(): CudaStatus {
  const load = loadAddon();
  if (!load.addon) return { usable: false, reason: load.reason };
  const info = load.addon.cudaInfo();
  // the engine's products need cuBLASLt (dlopen'ed: libcublasLt.so.13 or .12, or DITTY_CUBLASLT)
  if (info.available && info.cublasLtLoaded === false) return { usable: false, reason: info.cublasLt ?? 'cuBLASLt could not be loaded', info };
  if (info.available) return { usable: true, info };
  if (!info.built) {
    const file = path.join(packageRoot(), 'build', 'cuda-unavailable.txt');
    const why = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : 'the native engine was built without it';
    return { usable: false, reason: `the CUDA device was not built: ${why}`, info };
  }
  return { usable: false, reason: info.reason ?? 'the CUDA device is not available', info };
}
