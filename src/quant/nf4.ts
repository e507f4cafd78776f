/**
 * NF4 blockwise quantization with optional double quantization, bit-exact with bitsandbytes'
 * `quantize_4bit(quant_type="nf4", compress_statistics=...)` under the rules in REFERENCE.md.
 *
 * The state is a plain serialisable record (bitsandbytes' QuantState); it works on one tensor at a
 * time, flattened row-major, and allocates nothing per element.
 */
import {
  DYNAMIC_MAP, DYNAMIC_THRESHOLDS, NF4_CODE, NF4_ZERO_CODE, index256, midpoints, nf4Index,
} from './nf4-codebook.js';

const fr = Math.fround;

export const DEFAULT_BLOCKSIZE = 64;
export const DEFAULT_NESTED_BLOCKSIZE = 256;

/** The 8-bit quantized absmax of double quantization. */
export interface Nf4DoubleQuant {
  /** One uint8 code per NF4 block: index into `nestedMap`. */
  absmaxQ: Uint8Array;
  /** float32 absmax of (absmax - offset), one per `nestedBlocksize` NF4 blocks. */
  nestedAbsmax: Float32Array;
  /** float32 mean of the NF4 absmax values. */
  offset: number;
  nestedBlocksize: number;
  /** The 256-entry signed dynamic map (as stored in a checkpoint). */
  nestedMap: Float32Array;
}

export interface Nf4State {
  /** ceil(n/2) bytes; value 2j in the high nibble, 2j+1 in the low one; odd n pads code 7. */
  packed: Uint8Array;
  n: number;
  shape: number[];
  blocksize: number;
  /** float32 absmax per block without double quant; undefined with it. */
  absmax: Float32Array | undefined;
  doubleQuant?: Nf4DoubleQuant;
}

export interface QuantizeNf4Options {
  /** Shape of the original tensor (default [n]); its product must equal n. */
  shape?: readonly number[];
  /** Values per absmax block: a power of two in 32..4096 (default 64). */
  blocksize?: number;
  /** Quantize the absmax values to 8 bits (default true). */
  doubleQuant?: boolean;
  /** NF4 blocks per nested block: a power of two in 32..4096 (default 256). */
  nestedBlocksize?: number;
}

/** Throws unless `blocksize` is a power of two in 32..4096. */
export function validateBlocksize(blocksize: number, what = 'blocksize'): void {
  if (!Number.isInteger(blocksize) || blocksize < 32 || blocksize > 4096 || (blocksize & (blocksize - 1)) !== 0) {
    throw new RangeError(`${what} must be a power of two between 32 and 4096, got ${String(blocksize)}`);
  }
}

function checkedShape(shape: readonly number[] | undefined, n: number): number[] {
  if (shape === undefined) return [n];
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape [${shape.join(', ')}]`);
    count *= d;
  }
  if (count !== n) throw new RangeError(`shape [${shape.join(', ')}] holds ${count} values, got ${n}`);
  return [...shape];
}

/** Quantizes `values` (the flattened row-major tensor) to NF4. */
export function quantizeNf4(values: Float32Array, options: QuantizeNf4Options = {}): Nf4State {
  const blocksize = options.blocksize ?? DEFAULT_BLOCKSIZE;
  const nestedBlocksize = options.nestedBlocksize ?? DEFAULT_NESTED_BLOCKSIZE;
  validateBlocksize(blocksize);
  validateBlocksize(nestedBlocksize, 'nestedBlocksize');
  const n = values.length;
  const shape = checkedShape(options.shape, n);

  const packed = new Uint8Array(Math.ceil(n / 2));
  // An all-zero block scales every value to 0, which is code 7.
  const absmax = forEachScaledBlock(values, blocksize, (start, end, r) => {
    // blocksize is even, so a block starts on a byte boundary.
    for (let i = start; i < end; i += 2) {
      const hi = nf4Index(fr(values[i]! * r));
      const lo = i + 1 < end ? nf4Index(fr(values[i + 1]! * r)) : NF4_ZERO_CODE;
      packed[i >> 1] = (hi << 4) | lo;
    }
  });

  if (options.doubleQuant === false) return { packed, n, shape, blocksize, absmax };
  return { packed, n, shape, blocksize, absmax: undefined, doubleQuant: doubleQuantize(absmax, nestedBlocksize) };
}

/**
 * Calls `quantize(start, end, r)` for each block of `blocksize` values, with r = f32(1 / absmax of
 * the block) (0 for an all-zero block); returns the blocks' absmax values.
 */
function forEachScaledBlock(
  values: Float32Array, blocksize: number, quantize: (start: number, end: number, r: number) => void,
): Float32Array {
  const n = values.length;
  const absmax = new Float32Array(Math.ceil(n / blocksize));
  for (let b = 0; b < absmax.length; b++) {
    const start = b * blocksize;
    const end = Math.min(start + blocksize, n);
    const m = blockAbsmax(values, start, end);
    absmax[b] = m;
    quantize(start, end, m === 0 ? 0 : fr(1 / m));
  }
  return absmax;
}

function blockAbsmax(values: Float32Array, start: number, end: number): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(values[i]!);
    if (a > m) m = a;
  }
  return m;
}

/** offset = mean(absmax) in float64 rounded once to float32; centered = f32(absmax - offset). */
export function centerAbsmax(absmax: Float32Array): { offset: number; centered: Float32Array } {
  let sum = 0;
  for (let i = 0; i < absmax.length; i++) sum += absmax[i]!;
  const offset = absmax.length === 0 ? 0 : fr(sum / absmax.length);
  const centered = new Float32Array(absmax.length);
  for (let i = 0; i < absmax.length; i++) centered[i] = absmax[i]! - offset;
  return { offset, centered };
}

/** Double quantization of the NF4 absmax values. */
export function doubleQuantize(absmax: Float32Array, nestedBlocksize = DEFAULT_NESTED_BLOCKSIZE): Nf4DoubleQuant {
  const { offset, centered } = centerAbsmax(absmax);
  const { q, absmax: nestedAbsmax } = quantizeBlockwise8(centered, nestedBlocksize);
  return { absmaxQ: q, nestedAbsmax, offset, nestedBlocksize, nestedMap: DYNAMIC_MAP.slice() };
}

/**
 * Blockwise 8-bit quantization with a 256-entry sorted map (default: the signed dynamic map):
 * absmax = max|x| per block, q = threshold index of f32(x * f32(1/absmax)); an all-zero block
 * gets the code of 0.0.
 */
export function quantizeBlockwise8(
  values: Float32Array, blocksize: number, map: Float32Array = DYNAMIC_MAP,
): { q: Uint8Array; absmax: Float32Array } {
  if (map.length !== 256) throw new RangeError(`an 8-bit map needs 256 entries, got ${map.length}`);
  const thresholds = map === DYNAMIC_MAP ? DYNAMIC_THRESHOLDS : midpoints(map);
  const q = new Uint8Array(values.length);
  const absmax = forEachScaledBlock(values, blocksize, (start, end, r) => {
    for (let i = start; i < end; i++) q[i] = index256(fr(values[i]! * r), thresholds);
  });
  return { q, absmax };
}

/** out[i] = f32(map[q[i]] * absmax[i // blocksize]). */
export function dequantizeBlockwise8(
  q: Uint8Array, absmax: Float32Array, blocksize: number, map: Float32Array = DYNAMIC_MAP,
  out: Float32Array = new Float32Array(q.length),
): Float32Array {
  for (let i = 0; i < q.length; i++) out[i] = map[q[i]!]! * absmax[Math.floor(i / blocksize)]!;
  return out;
}

/** The float32 absmax of NF4 block j (dequantized from 8 bits with double quant). */
export function blockAbsmaxOf(state: Nf4State, j: number): number {
  const dq = state.doubleQuant;
  if (dq === undefined) {
    if (state.absmax === undefined) throw new Error('NF4 state has neither absmax nor doubleQuant');
    return state.absmax[j]!;
  }
  const nested = dq.nestedAbsmax[Math.floor(j / dq.nestedBlocksize)]!;
  return fr(fr(dq.nestedMap[dq.absmaxQ[j]!]! * nested) + dq.offset);
}

/** All float32 absmax values of the state (dequantized with double quant). */
export function absmaxOf(state: Nf4State): Float32Array {
  const out = new Float32Array(Math.ceil(state.n / state.blocksize));
  for (let j = 0; j < out.length; j++) out[j] = blockAbsmaxOf(state, j);
  return out;
}

/**
 * Dequantizes flat elements [start, end) into out[0 .. end-start):
 * value = f32(code[nibble] * absmax[i // blocksize]).
 */
export function dequantizeNf4Range(
  state: Nf4State, start: number, end: number, out: Float32Array = new Float32Array(end - start),
): Float32Array {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= state.n)) {
    throw new RangeError(`element range [${start}, ${end}) is outside [0, ${state.n})`);
  }
  if (out.length < end - start) throw new RangeError(`output holds ${out.length} values, need ${end - start}`);
  const { packed, blocksize } = state;
  const table = new Float32Array(16);
  for (let j = Math.floor(start / blocksize); j * blocksize < end; j++) {
    const a = blockAbsmaxOf(state, j);
    for (let c = 0; c < 16; c++) table[c] = NF4_CODE[c]! * a;
    const lo = Math.max(start, j * blocksize);
    const hi = Math.min(end, (j + 1) * blocksize);
    for (let i = lo; i < hi; i++) {
      const nibble = (packed[i >> 1]! >> ((~i & 1) << 2)) & 15;
      out[i - start] = table[nibble]!;
    }
  }
  return out;
}

/** Dequantizes the whole tensor (flat, row-major). */
export function dequantizeNf4(state: Nf4State): Float32Array {
  return dequantizeNf4Range(state, 0, state.n);
}

/** Same, into a caller-provided buffer of at least n values. */
export function dequantizeNf4Into(state: Nf4State, out: Float32Array): Float32Array {
  return dequantizeNf4Range(state, 0, state.n, out);
}

/** Dequantizes rows [r0, r1) of a 2-D weight into out[0 .. (r1-r0)*cols). */
export function dequantizeNf4Rows(state: Nf4State, r0: number, r1: number, out?: Float32Array): Float32Array {
  if (state.shape.length !== 2) throw new RangeError(`row dequantization needs a 2-D weight, shape is [${state.shape.join(', ')}]`);
  const [rows, cols] = state.shape as [number, number];
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && 0 <= r0 && r0 <= r1 && r1 <= rows)) {
    throw new RangeError(`row range [${r0}, ${r1}) is outside [0, ${rows})`);
  }
  return dequantizeNf4Range(state, r0 * cols, r1 * cols, out);
}

/** Stored bytes of the state: packed codes plus per-block statistics (not the shared code tables). */
export function nf4Bytes(state: Nf4State): number {
  const dq = state.doubleQuant;
  const stats = dq === undefined
    ? 4 * Math.ceil(state.n / state.blocksize)
    : dq.absmaxQ.length + 4 * dq.nestedAbsmax.length + 4;
  return state.packed.length + stats;
}

/** Stored bits per parameter (4.5 without and about 4.127 with double quant at blocksize 64). */
export function bitsPerParameter(state: Nf4State): number {
  return state.n === 0 ? 0 : (8 * nf4Bytes(state)) / state.n;
}
