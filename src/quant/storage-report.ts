/**
 * Where the bytes of a (4-bit) checkpoint go: per linear, and by part (packed codes, absmax,
 * nested absmax, code tables, quant-state JSON, float tensors). Bits per parameter of a quantized
 * linear counts its codes and block statistics, as bitsandbytes' 4.127 figure does.
 */
import { DTYPE_SIZES, numel } from '../io/dtypes.js';
import type { TensorInfo } from '../io/tensor-source.js';
import { quantStateJson, type QuantStateDtype } from './bnb-format.js';
import { DEFAULT_NESTED_BLOCKSIZE } from './nf4.js';

/** Stored bytes of one 4-bit linear weight, by part. */
export interface Nf4Parts {
  /** 4-bit codes, two per byte */
  readonly packed: number;
  /** one uint8 per block with double quant, one float32 without */
  readonly absmax: number;
  /** float32 nested absmax (double quant only) */
  readonly nestedAbsmax: number;
  /** the float32 offset of double quant (4; stored inside the quant-state JSON, so not a tensor) */
  readonly offset: number;
  /** quant_map (16 float32) and nested_quant_map (256 float32) */
  readonly codeTables: number;
  /** the quant-state JSON */
  readonly quantState: number;
}

/** Codes and block statistics (offset included): what bits per parameter counts, like nf4Bytes. */
export function nf4WeightBytes(p: Nf4Parts): number {
  return p.packed + p.absmax + p.nestedAbsmax + p.offset;
}

/** The parts of a stored bitsandbytes linear weight `${path}.weight*`, from the tensor sizes. */
export function storedNf4Parts(info: (name: string) => TensorInfo | undefined, path: string, nested: boolean): Nf4Parts {
  const bytes = (suffix: string): number => {
    const i = info(`${path}.weight${suffix}`);
    return i === undefined ? 0 : numel(i.shape) * DTYPE_SIZES[i.dtype];
  };
  return {
    packed: bytes(''),
    absmax: bytes('.absmax'),
    nestedAbsmax: bytes('.nested_absmax'),
    offset: nested ? 4 : 0,
    codeTables: bytes('.quant_map') + bytes('.nested_quant_map'),
    quantState: bytes('.quant_state.bitsandbytes__nf4'),
  };
}

/**
 * The parts `ditty quantize` would write for a [out, in] weight stored as `dtype` before quantization
 * (the JSON length assumes a typical offset).
 */
export function plannedNf4Parts(shape: readonly [number, number], blocksize: number, doubleQuant: boolean, dtype: QuantStateDtype = 'float32'): Nf4Parts {
  const n = shape[0] * shape[1];
  const blocks = Math.ceil(n / blocksize);
  const json = quantStateJson({
    packed: new Uint8Array(0), n, shape: [...shape], blocksize, absmax: undefined,
    ...(doubleQuant ? {
      doubleQuant: {
        absmaxQ: new Uint8Array(0), nestedAbsmax: new Float32Array(0), offset: 0.012345678901234567,
        nestedBlocksize: DEFAULT_NESTED_BLOCKSIZE, nestedMap: new Float32Array(0),
      },
    } : {}),
  }, dtype);
  return {
    packed: Math.ceil(n / 2),
    absmax: doubleQuant ? blocks : 4 * blocks,
    nestedAbsmax: doubleQuant ? 4 * Math.ceil(blocks / DEFAULT_NESTED_BLOCKSIZE) : 0,
    offset: doubleQuant ? 4 : 0,
    codeTables: 4 * 16 + (doubleQuant ? 4 * 256 : 0),
    quantState: new TextEncoder().encode(json).length,
  };
}

export interface LinearStorage {
  readonly path: string;
  readonly quantized: boolean;
  /** parameters of the weight */
  readonly parameters: number;
  /** weight bytes: codes and block statistics when quantized */
  readonly bytes: number;
  /** everything stored for the linear: weight, code tables, quant-state JSON, bias */
  readonly storedBytes: number;
  readonly bitsPerParameter: number;
}

export interface StorageReport {
  readonly linears: LinearStorage[];
  readonly bytes: {
    readonly packedCodes: number;
    readonly absmax: number;
    readonly nestedAbsmax: number;
    readonly codeTables: number;
    readonly quantState: number;
    readonly floatTensors: number;
    readonly total: number;
  };
  readonly quantizedLinears: number;
  readonly quantizedParameters: number;
  /** over the quantized linears' weights (codes + statistics) */
  readonly bitsPerParameterQuantized: number;
  /** all bytes over all parameters */
  readonly bitsPerParameterOverall: number;
}

export interface LinearShape {
  readonly path: string;
  readonly out: number;
  readonly in: number;
}

/**
 * Accounts every tensor of `tensors` (the stored, or planned-float, checkpoint) to a part. The
 * weights of the linears in `quantized` are counted through their parts; `parameters` is the
 * model's parameter count with every weight at its logical [out, in] size.
 */
export function storageReport(
  tensors: readonly TensorInfo[], linears: readonly LinearShape[], quantized: ReadonlyMap<string, Nf4Parts>, parameters: number,
): StorageReport {
  const bytesOf = new Map(tensors.map((t) => [t.name, numel(t.shape) * DTYPE_SIZES[t.dtype]]));
  const isQuantizedWeight = (name: string): boolean => {
    const i = name.indexOf('.weight');
    return i > 0 && quantized.has(name.slice(0, i)) && (name.length === i + 7 || name[i + 7] === '.');
  };
  const floatTensors = tensors.filter((t) => !isQuantizedWeight(t.name)).reduce((s, t) => s + bytesOf.get(t.name)!, 0);
  const parts = [...quantized.values()];
  const sum = (f: (p: Nf4Parts) => number): number => parts.reduce((s, p) => s + f(p), 0);
  const bytes = {
    packedCodes: sum((p) => p.packed), absmax: sum((p) => p.absmax), nestedAbsmax: sum((p) => p.nestedAbsmax),
    codeTables: sum((p) => p.codeTables), quantState: sum((p) => p.quantState), floatTensors, total: 0,
  };
  bytes.total = bytes.packedCodes + bytes.absmax + bytes.nestedAbsmax + bytes.codeTables + bytes.quantState + floatTensors;
  const linearStorage = linears.map((l): LinearStorage => {
    const n = l.out * l.in;
    const bias = bytesOf.get(`${l.path}.bias`) ?? 0;
    const q = quantized.get(l.path);
    const weight = q ? nf4WeightBytes(q) : bytesOf.get(`${l.path}.weight`) ?? 0;
    const stored = q ? weight - q.offset + q.codeTables + q.quantState : weight;
    return { path: l.path, quantized: q !== undefined, parameters: n, bytes: weight, storedBytes: stored + bias, bitsPerParameter: n === 0 ? 0 : (8 * weight) / n };
  });
  const quantizedParameters = linearStorage.filter((l) => l.quantized).reduce((s, l) => s + l.parameters, 0);
  return {
    linears: linearStorage, bytes, quantizedLinears: quantized.size, quantizedParameters,
    bitsPerParameterQuantized: quantizedParameters === 0 ? 0 : (8 * sum(nf4WeightBytes)) / quantizedParameters,
    bitsPerParameterOverall: parameters === 0 ? 0 : (8 * bytes.total) / parameters,
  };
}
