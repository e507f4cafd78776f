/**
 * `ditty quantize`: a float checkpoint -> a bitsandbytes 4-bit safetensors checkpoint that
 * transformers loads as is. Linears are read, quantized and written tensor by tensor; everything
 * else is copied byte for byte in its stored dtype.
 *
 * A safetensors header lists every tensor's size before the data, and a quant-state JSON's length
 * depends on its nested offset, known only after quantizing. So the quantized tensors of one output
 * shard are computed just before that shard is written: memory stays near one shard of 4-bit data,
 * never the float model.
 */
import { DTYPE_SIZES, FLOAT_DTYPES, numel } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { writeShardedUnits, type ShardUnit } from '../io/safetensors-writer.js';
import type { TensorSource } from '../io/tensor-source.js';
import { PyFloat, pythonJsonDumps, type PyJson } from '../io/python-json.js';
import { quantStateKey } from './bnb-checkpoint.js';
import { quantStateDtypeOf, toBnbTensors, type ComputeDtype } from './bnb-format.js';
import { nf4Bytes, quantizeNf4 } from './nf4.js';
import { quantizedLinearSelector, type ModelLinears, type QuantizationOptions } from './options.js';


/**
 * config.json's `quantization_config` exactly as transformers writes BitsAndBytesConfig(load_in_4bit=True,
 * bnb_4bit_quant_type="nf4", ...).to_dict(). `skipped` are the full module paths of the linears kept
 * in float besides the head. With none, `llm_int8_skip_modules` stays null (transformers then keeps
 * the output head in float by itself); otherwise it is those full paths plus the head, because
 * transformers converts everything not listed, and transformers 4.x matches an entry only as a leaf
 * name, a full path or a path prefix ending at a "." (a partial path such as "blocks.1.attention.key"
 * matches nothing there), while a full path matches in every version.
 */
export function bnbQuantizationConfig(opts: {
  doubleQuant: boolean; computeDtype: ComputeDtype; skipped: readonly string[]; head: string;
}): Record<string, PyJson> {
  const others = opts.skipped.filter((p) => p !== opts.head);
  const skip = others.length === 0 ? null : [...new Set([...others, opts.head])];
  return {
    quant_method: 'bitsandbytes',
    _load_in_8bit: false,
    _load_in_4bit: true,
    llm_int8_threshold: new PyFloat(6.0),
    llm_int8_skip_modules: skip,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: opts.doubleQuant,
    bnb_4bit_compute_dtype: opts.computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    load_in_4bit: true,
    load_in_8bit: false,
  };
}

export interface QuantizeCheckpointOptions {
  readonly quantization: QuantizationOptions;
  /**
   * recorded as config.json's bnb_4bit_compute_dtype (ditty itself computes in float32); each quant
   * state records the dtype its weight was stored in instead, as bitsandbytes does
   */
  readonly computeDtype: ComputeDtype;
  /** largest tensor data of one shard; more than that gives model-0000k-of-0000n files and an index */
  readonly maxShardBytes: number;
  /** called after each quantized linear and each written shard */
  readonly onProgress?: (linearsDone: number, linearsTotal: number) => void;
}

export interface QuantizeSummary {
  readonly quantizedLinears: number;
  readonly quantizedParameters: number;
  /** packed codes + block statistics of the quantized linears (4.127 bits per parameter at blocksize 64) */
  readonly quantizedBytes: number;
  /** tensors copied as they were (biases, embeddings, norms, head, ...) */
  readonly copiedTensors: number;
  /** tensor data in the input checkpoint and in the output */
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** weight files written, relative to the folder (the index last) */
  readonly files: readonly string[];
}

/** One tensor copied, or one linear quantized; `bytes` is its (estimated) output size. */
type Unit = { readonly bytes: number; readonly sourceBytes: number } & (
  | { readonly kind: 'copy'; readonly name: string }
  | { readonly kind: 'nf4'; readonly path: string; readonly shape: [number, number]; readonly dtype: string });

/** Output bytes of one 4-bit linear, with room for the quant-state JSON (for assigning shards only). */
function estimatedNf4Bytes(n: number, q: QuantizationOptions): number {
  const blocks = Math.ceil(n / q.blocksize);
  const stats = q.doubleQuant ? blocks + 4 * Math.ceil(blocks / 256) + 4 * 256 : 4 * blocks;
  return Math.ceil(n / 2) + stats + 4 * 16 + 256;
}

/** What becomes of each tensor, in the source's order; the linears to quantize become one unit each. */
function planUnits(source: TensorSource, linears: ModelLinears, q: QuantizationOptions): Unit[] {
  const selected = quantizedLinearSelector(linears, q);
  const already = linears.paths.find((p) => source.has(quantStateKey(p)));
  if (already !== undefined) throw new InputError(`${source.location}: already a 4-bit checkpoint ("${quantStateKey(already)}" is present)`);
  const targets = new Set(linears.paths.filter(selected));
  return source.names().map((name): Unit => {
    const info = source.info(name);
    const sourceBytes = numel(info.shape) * DTYPE_SIZES[info.dtype];
    const modulePath = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : undefined;
    if (modulePath === undefined || !targets.has(modulePath)) return { kind: 'copy', name, bytes: sourceBytes, sourceBytes };
    if (!FLOAT_DTYPES.has(info.dtype)) throw new InputError(`${source.location}: tensor "${name}" is ${info.dtype}; expected a float weight to quantize`);
    const shape = info.shape as [number, number];
    return { kind: 'nf4', path: modulePath, shape, dtype: info.dtype, bytes: estimatedNf4Bytes(numel(shape), q), sourceBytes };
  });
}

/**
 * Writes the weights of `source` into `dir` as a bitsandbytes 4-bit checkpoint (model.safetensors, or
 * shards + model.safetensors.index.json), with `__metadata__` {"format": "pt"}.
 */
export async function writeQuantizedWeights(
  source: TensorSource, linears: ModelLinears, dir: string, options: QuantizeCheckpointOptions,
): Promise<QuantizeSummary> {
  const q = options.quantization;
  if (q.bits !== 4) throw new InputError(`quantize writes 4-bit checkpoints; got bits ${q.bits}`);
  const units = planUnits(source, linears, q);
  const linearsTotal = units.filter((u) => u.kind === 'nf4').length;
  let linearsDone = 0;
  let quantizedParameters = 0;
  let quantizedBytes = 0;
  const shardUnits = units.map((u): ShardUnit => ({
    bytes: u.bytes,
    tensors: () => {
      if (u.kind === 'copy') {
        const info = source.info(u.name);
        return [{ name: u.name, dtype: info.dtype, shape: info.shape, data: () => source.readBytes(u.name) }];
      }
      const state = quantizeNf4(source.readFloat32(`${u.path}.weight`), { shape: u.shape, blocksize: q.blocksize, doubleQuant: q.doubleQuant });
      quantizedParameters += state.n;
      quantizedBytes += nf4Bytes(state);
      options.onProgress?.(++linearsDone, linearsTotal);
      return toBnbTensors(u.path, state, quantStateDtypeOf(u.dtype));
    },
  }));
  const written = await writeShardedUnits(dir, shardUnits, {
    maxShardBytes: options.maxShardBytes, metadata: { format: 'pt' }, onShard: () => options.onProgress?.(linearsDone, linearsTotal),
  });
  const files = written.index ? [...written.files, written.index] : written.files;
  const bytesAfter = written.totalSize;
  return {
    quantizedLinears: linearsTotal, quantizedParameters, quantizedBytes,
    copiedTensors: units.filter((u) => u.kind === 'copy').length,
    bytesBefore: units.reduce((s, u) => s + u.sourceBytes, 0),
    bytesAfter, files,
  };
}

/**
 * Whether config.json of an RWKV model asks transformers to rescale (rescale_every > 0, or absent:
 * transformers' default is 6). transformers' RwkvModel then rebuilds `attention.output` and
 * `feed_forward.value` of a bitsandbytes 4-bit model on every eval()/train() switch with default
 * (FP4) Params4bit and rescales their packed data (`_bnb_4bit_dequantize_and_rescale`), which
 * corrupts NF4 layers; so a 4-bit RWKV checkpoint gets rescale_every 0.
 */
export function rwkvRescaleConflicts(raw: Readonly<Record<string, unknown>>, architecture: string): boolean {
  return architecture === 'rwkv' && raw['rescale_every'] !== 0;
}

/** The one-line notice of quantizedConfigJson setting rescale_every to 0. */
export const RWKV_RESCALE_NOTICE = 'rescale_every is set to 0 in config.json: transformers rescales the 4-bit attention.output and '
  + 'feed_forward.value weights of an RWKV model as FP4 on every eval()/train() switch, corrupting NF4 layers; '
  + 'load the model in bfloat16 to avoid the float16 overflow that rescaling guards against (ditty never rescales, so its results are unchanged)';

/**
 * config.json of the 4-bit checkpoint: the original keys plus quantization_config, as transformers
 * writes it, with rescale_every 0 for RWKV (see rwkvRescaleConflicts). `linears` are every linear of
 * the model, to name the skipped ones by full path.
 */
export function quantizedConfigJson(
  raw: Readonly<Record<string, unknown>>, architecture: string, options: QuantizeCheckpointOptions, linears: ModelLinears,
): string {
  const quantizes = quantizedLinearSelector(linears, options.quantization);
  const quantization_config = bnbQuantizationConfig({
    doubleQuant: options.quantization.doubleQuant, computeDtype: options.computeDtype,
    skipped: linears.paths.filter((p) => !quantizes(p)), head: linears.head,
  });
  const config: Record<string, PyJson> = { ...(raw as Record<string, PyJson>) };
  if (rwkvRescaleConflicts(raw, architecture)) config['rescale_every'] = 0;
  return `${pythonJsonDumps({ ...config, quantization_config })}\n`;
}
