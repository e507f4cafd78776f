/**
 * Loads a checkpoint's weights into the native engine, tensor by tensor: the same declarations and
 * checks as the tfjs models (declareRwkvWeights / declareGptNeoXWeights, WeightLoader), but every
 * tensor goes straight into an engine buffer. Linears that are quantized on load are quantized by
 * the engine's NF4 kernel (bit-exact with bitsandbytes) so the float weight never outlives its own
 * upload; stored bitsandbytes 4-bit linears are uploaded as they are.
 */
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import type { Nf4Handles } from '../engine/native/addon.js';
import type { Buf, NativeDevice } from '../engine/native/device.js';
import { NativeLinear, type BaseWeight } from '../engine/native/linear.js';
import { DEFAULT_NESTED_BLOCKSIZE, type Nf4State } from '../quant/nf4.js';
import { DYNAMIC_MAP } from '../quant/nf4-codebook.js';
import type { ModelConfig } from './config.js';
import { declareGptNeoXWeights, IGNORED_BUFFERS } from './gpt-neox.js';
import { normStorer, type WeightStorers } from './model.js';
import { declareRwkvWeights } from './rwkv4.js';
import { WEIGHT_NAMES } from './weight-names.js';
import { WeightLoader, type WeightLoaderOptions } from './weights.js';

export interface NativeWeights {
  /** embeddings, norms, mixes and decays by checkpoint name */
  readonly params: Map<string, Buf>;
  readonly linears: Map<string, NativeLinear>;
  /** the output head [vocab, hidden], dense (may be the embedding buffer when tied) */
  readonly head: Buf;
  readonly warnings: string[];
  dispose(): void;
}

/** The double-quant offset as a one-float buffer where the kernels read it from device memory (cuda), else -1. */
function offsetBuffer(device: NativeDevice, offset: number, buffers: Buf[]): number {
  if (device.kind !== 'cuda') return -1;
  const b = device.upload(Float32Array.of(offset));
  buffers.push(b);
  return b.id;
}

/** Uploads an NF4 state (bitsandbytes layout) as engine buffers. */
export function uploadNf4(device: NativeDevice, state: Nf4State): BaseWeight {
  if (state.shape.length !== 2) throw new Error(`an NF4 linear needs a 2-D weight, got [${state.shape.join(', ')}]`);
  const [rows, cols] = state.shape as [number, number];
  const buffers: Buf[] = [device.upload(state.packed)];
  const dq = state.doubleQuant;
  const up = (a: Float32Array | Uint8Array): number => {
    const b = device.upload(a);
    buffers.push(b);
    return b.id;
  };
  const handles: Nf4Handles = dq === undefined
    ? { packed: buffers[0]!.id, rows, cols, blocksize: state.blocksize, absmax: up(state.absmax!), absmaxQ: -1, nestedAbsmax: -1, nestedMap: -1, offset: 0, nestedBlocksize: DEFAULT_NESTED_BLOCKSIZE }
    : {
      packed: buffers[0]!.id, rows, cols, blocksize: state.blocksize, absmax: -1, absmaxQ: up(dq.absmaxQ),
      nestedAbsmax: up(dq.nestedAbsmax), nestedMap: up(dq.nestedMap), offset: dq.offset, nestedBlocksize: dq.nestedBlocksize,
      offsetBuffer: offsetBuffer(device, dq.offset, buffers),
    };
  return { kind: 'nf4', handles, buffers };
}

/** Quantizes float values to NF4 on the engine (bitsandbytes' layout and rounding). */
function quantizeOnDevice(device: NativeDevice, values: Float32Array, shape: readonly [number, number], blocksize: number, doubleQuant: boolean): BaseWeight {
  const a = device.addon;
  const n = values.length;
  const blocks = Math.ceil(n / blocksize);
  const nestedBlocksize = DEFAULT_NESTED_BLOCKSIZE;
  const src = device.upload(values);
  const packed = device.alloc('u8', Math.ceil(n / 2));
  const buffers: Buf[] = [packed];
  try {
    if (!doubleQuant) {
      const absmax = device.f32(blocks);
      buffers.push(absmax);
      a.nf4Quantize(src.id, n, blocksize, false, nestedBlocksize, packed.id, absmax.id, -1, -1);
      return { kind: 'nf4', buffers, handles: { packed: packed.id, rows: shape[0], cols: shape[1], blocksize, absmax: absmax.id, absmaxQ: -1, nestedAbsmax: -1, nestedMap: -1, offset: 0, nestedBlocksize } };
    }
    const absmaxQ = device.alloc('u8', blocks);
    const nested = device.f32(Math.ceil(blocks / nestedBlocksize));
    const map = device.upload(DYNAMIC_MAP);
    buffers.push(absmaxQ, nested, map);
    const offsetBuf = device.kind === 'cuda' ? device.f32(1) : undefined;
    if (offsetBuf) buffers.push(offsetBuf);
    const offset = a.nf4Quantize(src.id, n, blocksize, true, nestedBlocksize, packed.id, -1, absmaxQ.id, nested.id, map.id, offsetBuf?.id ?? -1);
    return {
      kind: 'nf4', buffers,
      handles: {
        packed: packed.id, rows: shape[0], cols: shape[1], blocksize, absmax: -1, absmaxQ: absmaxQ.id, nestedAbsmax: nested.id, nestedMap: map.id, offset, nestedBlocksize,
        offsetBuffer: offsetBuf?.id ?? -1,
      },
    };
  } catch (err) {
    device.free(...buffers);
    throw err;
  } finally {
    device.free(src);
  }
}

/** Reads every weight of `config` from `source` into the engine; frees what it made if loading fails. */
export function loadNativeWeights(
  device: NativeDevice, config: ModelConfig, source: TensorSource, options: WeightLoaderOptions,
): NativeWeights {
  const loader = new WeightLoader(source, options);
  const params = new Map<string, Buf>();
  const linears = new Map<string, NativeLinear>();
  let head: Buf | undefined;
  let ownHead = false;
  const H = config.hidden_size;
  const dispose = (): void => {
    for (const b of params.values()) device.free(b);
    for (const l of linears.values()) l.dispose();
    if (ownHead) device.free(head);
    params.clear();
    linears.clear();
  };
  // the embedding, the head and the linears' weights and biases are operands of activations: stored in their dtype
  const param = (name: string, shape: number[]): void => {
    const values = loader.values(name, shape);
    params.set(name, name === WEIGHT_NAMES[config.model_type].embedding ? device.uploadAct(values) : device.upload(values));
  };
  const linear = (path: string, out: number, inp: number, bias: boolean): void => {
    const b = bias ? device.uploadAct(loader.values(`${path}.bias`, [out])) : undefined;
    const w = loader.linearWeight(path, out, inp, (values, shape, q) => quantizeOnDevice(device, values, shape, q.blocksize, q.doubleQuant));
    const base: BaseWeight = w.kind === 'nf4' ? uploadNf4(device, w.state) : w.kind === 'quantized' ? w.quantized : { kind: 'dense', weight: device.uploadAct(w.values) };
    linears.set(path, new NativeLinear(device, path, out, inp, base, b));
  };
  const store: WeightStorers = {
    param,
    linear,
    norm: normStorer(param, H),
    head: (path, embedding, tied) => {
      if (tied && !source.has(`${path}.weight`)) {
        head = params.get(embedding);
        return;
      }
      const w = loader.linearWeight(path, config.vocab_size, H, () => undefined);
      if (w.kind !== 'float') {
        throw new InputError(`${source.location}: the output head "${path}" is stored in 4-bit; the native engine needs a float head (load with quantization bits 16 for the head, or use backend wasm)`);
      }
      head = device.uploadAct(w.values);
      ownHead = true;
    },
  };
  try {
    if (config.model_type === 'rwkv') declareRwkvWeights(config, store);
    else declareGptNeoXWeights(config, store);
  } catch (err) {
    dispose();
    throw err;
  }
  return {
    params, linears, head: head!, warnings: loader.warnings(config.model_type === 'gpt_neox' ? IGNORED_BUFFERS : []),
    dispose,
  };
}
