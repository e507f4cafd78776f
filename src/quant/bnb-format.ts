/**
 * Conversion between an NF4 state and the tensors bitsandbytes saves for a 4-bit linear layer
 * (`QuantState.as_dict(packed=True)`), for a layer prefix L:
 *   L.weight U8 [(n+1)/2, 1], L.weight.absmax (U8 with double quant, F32 without),
 *   L.weight.quant_map F32 [16], L.weight.nested_absmax F32, L.weight.nested_quant_map F32 [256],
 *   L.weight.quant_state.bitsandbytes__nf4 U8 = UTF-8 of Python json.dumps of the non-tensor fields.
 */
import { float32Bytes, toFloat32 } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { NF4_CODE } from './nf4-codebook.js';
import { validateBlocksize, type Nf4DoubleQuant, type Nf4State } from './nf4.js';
import { pythonJsonFloat } from '../io/python-json.js';

/** A compute dtype as config.json's `bnb_4bit_compute_dtype` names it (torch dtype name without "torch."). */
export type ComputeDtype = 'bfloat16' | 'float16' | 'float32';

/**
 * The quant state's "dtype": the dtype of the tensor that was quantized (bitsandbytes'
 * `QuantState.as_dict` records `A.dtype`), which dequantization returns; not the compute dtype.
 */
export type QuantStateDtype = 'bfloat16' | 'float16' | 'float32';
const QUANT_STATE_DTYPES: readonly string[] = ['bfloat16', 'float16', 'float32'];

/**
 * The quant-state dtype for a weight stored as `stored` (a safetensors dtype): F32 -> "float32",
 * F16 -> "float16", BF16 -> "bfloat16". ditty quantizes the float32 values of any other float
 * dtype (F64), and bitsandbytes quantizes only those three, so anything else records "float32".
 */
export function quantStateDtypeOf(stored: string): QuantStateDtype {
  return stored === 'BF16' ? 'bfloat16' : stored === 'F16' ? 'float16' : 'float32';
}

export interface BnbTensor {
  name: string;
  dtype: 'U8' | 'F32';
  shape: number[];
  data: Uint8Array;
}

/** What `fromBnbTensors` needs to know about a stored tensor. */
export interface StoredTensor {
  dtype: string;
  shape: readonly number[];
  bytes: Uint8Array;
}

export const QUANT_STATE_SUFFIX = 'quant_state.bitsandbytes__nf4';

/**
 * The quant-state JSON exactly as bitsandbytes writes it (json.dumps, as_dict key order); `dtype` is
 * that of the weight that was quantized (see QuantStateDtype).
 */
export function quantStateJson(state: Nf4State, dtype: QuantStateDtype): string {
  const fields = [
    `"quant_type": "nf4"`,
    `"blocksize": ${state.blocksize}`,
    `"dtype": "${dtype}"`,
    `"shape": [${state.shape.join(', ')}]`,
  ];
  const dq = state.doubleQuant;
  if (dq !== undefined) {
    fields.push(
      `"nested_blocksize": ${dq.nestedBlocksize}`,
      `"nested_dtype": "float32"`,
      `"nested_offset": ${pythonJsonFloat(dq.offset)}`,
    );
  }
  return `{${fields.join(', ')}}`;
}

/**
 * The bitsandbytes tensors of one quantized weight (the bias, if any, is not included). `dtype` is
 * the dtype the weight had before quantization (quantStateDtypeOf of its stored dtype).
 */
export function toBnbTensors(prefix: string, state: Nf4State, dtype: QuantStateDtype): BnbTensor[] {
  const w = `${prefix}.weight`;
  const numBlocks = Math.ceil(state.n / state.blocksize);
  const tensors: BnbTensor[] = [{ name: w, dtype: 'U8', shape: [state.packed.length, 1], data: state.packed }];
  const dq = state.doubleQuant;
  if (dq === undefined) {
    if (state.absmax === undefined) throw new Error(`${w}: NF4 state has neither absmax nor doubleQuant`);
    tensors.push({ name: `${w}.absmax`, dtype: 'F32', shape: [numBlocks], data: float32Bytes(state.absmax) });
  } else {
    tensors.push({ name: `${w}.absmax`, dtype: 'U8', shape: [numBlocks], data: dq.absmaxQ });
  }
  tensors.push({ name: `${w}.quant_map`, dtype: 'F32', shape: [16], data: float32Bytes(NF4_CODE) });
  if (dq !== undefined) {
    tensors.push(
      { name: `${w}.nested_absmax`, dtype: 'F32', shape: [dq.nestedAbsmax.length], data: float32Bytes(dq.nestedAbsmax) },
      { name: `${w}.nested_quant_map`, dtype: 'F32', shape: [dq.nestedMap.length], data: float32Bytes(dq.nestedMap) },
    );
  }
  const json = new TextEncoder().encode(quantStateJson(state, dtype));
  tensors.push({ name: `${w}.${QUANT_STATE_SUFFIX}`, dtype: 'U8', shape: [json.length], data: json });
  return tensors;
}

/** The fields of a quant-state JSON that matter to ditty. */
export interface QuantStateJson {
  blocksize: number;
  /** the dtype of the weight before quantization */
  dtype: QuantStateDtype;
  shape: number[];
  nested?: { blocksize: number; offset: number };
}

/** Parses the quant-state JSON stored under `key`; errors name the key and the bad field. */
export function parseQuantState(key: string, bytes: Uint8Array): QuantStateJson {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new InputError(`${key}: not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`${key}: not a JSON object`);
  const o = raw as Record<string, unknown>;
  const bad = (field: string, want: string): InputError =>
    new InputError(`${key}: "${field}" must be ${want}, got ${JSON.stringify(o[field])}`);
  if (o.quant_type !== 'nf4') throw bad('quant_type', '"nf4"');
  const blocksize = o.blocksize;
  if (typeof blocksize !== 'number') throw bad('blocksize', 'a number');
  try {
    validateBlocksize(blocksize);
  } catch (e) {
    throw new InputError(`${key}: ${(e as Error).message}`);
  }
  // bitsandbytes writes "bfloat16", "float16" or "float32"; tolerate a "torch." prefix as some writers keep it.
  const dtype = typeof o.dtype === 'string' ? o.dtype.replace(/^torch\./, '') : undefined;
  if (dtype === undefined || !QUANT_STATE_DTYPES.includes(dtype)) throw bad('dtype', `one of ${QUANT_STATE_DTYPES.join(', ')}`);
  const shape = o.shape;
  if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isInteger(d) && d >= 0)) {
    throw bad('shape', 'a list of non-negative integers');
  }
  const result: QuantStateJson = { blocksize, dtype: dtype as QuantStateDtype, shape };
  if (!('nested_offset' in o) && !('nested_blocksize' in o)) return result;
  const nb = o.nested_blocksize;
  if (typeof nb !== 'number' || !Number.isInteger(nb) || nb <= 0) throw bad('nested_blocksize', 'a positive integer');
  if (o.nested_dtype !== 'float32') throw bad('nested_dtype', '"float32"');
  if (typeof o.nested_offset !== 'number') throw bad('nested_offset', 'a number');
  return { ...result, nested: { blocksize: nb, offset: Math.fround(o.nested_offset) } };
}

/**
 * Reads one quantized weight back from its bitsandbytes tensors, with the dtype it had before
 * quantization (any of QuantStateDtype). `get` returns a stored tensor by full name, or undefined
 * when absent. Errors name the missing or malformed key.
 */
export function fromBnbTensors(
  prefix: string, get: (name: string) => StoredTensor | undefined,
): Nf4State & { dtype: QuantStateDtype } {
  const w = `${prefix}.weight`;
  const need = (name: string, dtype: 'U8' | 'F32', length?: number): Uint8Array => {
    const t = get(name);
    if (t === undefined) throw new InputError(`missing tensor "${name}"`);
    if (t.dtype !== dtype) throw new InputError(`tensor "${name}": dtype ${t.dtype}, expected ${dtype}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const bytesPer = dtype === 'U8' ? 1 : 4;
    if (t.bytes.length !== count * bytesPer) {
      throw new InputError(`tensor "${name}": ${t.bytes.length} bytes for shape [${t.shape.join(', ')}]`);
    }
    if (length !== undefined && count !== length) {
      throw new InputError(`tensor "${name}": ${count} values (shape [${t.shape.join(', ')}]), expected ${length}`);
    }
    return t.bytes;
  };

  const stateKey = `${w}.${QUANT_STATE_SUFFIX}`;
  const qs = parseQuantState(stateKey, need(stateKey, 'U8'));
  const n = qs.shape.reduce((a, b) => a * b, 1);
  const numBlocks = Math.ceil(n / qs.blocksize);

  const packed = need(w, 'U8', Math.ceil(n / 2)).slice();
  const quantMap = toFloat32(need(`${w}.quant_map`, 'F32', 16), 'F32');
  if (!quantMap.every((v, i) => Object.is(v, NF4_CODE[i]))) {
    throw new InputError(`tensor "${w}.quant_map": not the NF4 code table`);
  }

  const base = { packed, n, shape: qs.shape, blocksize: qs.blocksize, dtype: qs.dtype };
  if (qs.nested === undefined) {
    const absmax = toFloat32(need(`${w}.absmax`, 'F32', numBlocks), 'F32');
    return { ...base, absmax };
  }
  const nestedBlocksize = qs.nested.blocksize;
  const doubleQuant: Nf4DoubleQuant = {
    absmaxQ: need(`${w}.absmax`, 'U8', numBlocks).slice(),
    nestedAbsmax: toFloat32(need(`${w}.nested_absmax`, 'F32', Math.ceil(numBlocks / nestedBlocksize)), 'F32'),
    offset: qs.nested.offset,
    nestedBlocksize,
    nestedMap: toFloat32(need(`${w}.nested_quant_map`, 'F32', 256), 'F32'),
  };
  return { ...base, absmax: undefined, doubleQuant };
}
