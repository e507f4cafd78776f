/**
 * `ditty export --merged`: a Hugging Face model folder with every LoRA update folded into its base
 * weight (W' = W + scaling * B A, in float32), written tensor by tensor from the base checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../io/checkpoint.js';
import { FLOAT_DTYPES, fromFloat32 } from '../io/dtypes.js';
import { InputError } from '../io/errors.js';
import { writeShardedSafetensors, type TensorToWrite } from '../io/safetensors-writer.js';
import { resolveModelFolder } from '../hub/index.js';
import { checkAdapter, type CheckedModule } from '../lora/adapter-check.js';
import { readAdapter } from '../lora/adapter-files.js';
import { mergedWeight } from '../lora/merge.js';
import { readModelConfig } from '../models/config.js';
import { resolveAdapterPath } from '../runtime/run-folder.js';
import { describeBase, type BaseCheckpoint } from './base-checkpoint.js';
import { writeModelFolder } from '../io/model-folder.js';
import { checkOutputFolder } from '../io/output-folder.js';

export const EXPORT_DTYPES = ['bf16', 'fp16', 'fp32'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];

const STORED: Readonly<Record<ExportDtype, 'BF16' | 'F16' | 'F32'>> = { bf16: 'BF16', fp16: 'F16', fp32: 'F32' };
const TORCH: Readonly<Record<ExportDtype, string>> = { bf16: 'bfloat16', fp16: 'float16', fp32: 'float32' };

/**
 * Float tensors transformers keeps in float32 whatever the model dtype (`_keep_in_fp32_modules`),
 * so they are written as F32: RwkvPreTrainedModel's time_decay and time_first.
 */
export function keptInFloat32(modelType: string, name: string): boolean {
  return modelType === 'rwkv' && (name.endsWith('attention.time_decay') || name.endsWith('attention.time_first'));
}

/** The export dtype for a config's torch_dtype (or newer transformers' dtype), when it is a float one. */
export function dtypeOfConfig(raw: Readonly<Record<string, unknown>>): ExportDtype | undefined {
  const torch = raw['torch_dtype'] ?? raw['dtype'];
  if (typeof torch !== 'string') return undefined;
  const name = torch.replace(/^torch\./, '');
  return EXPORT_DTYPES.find((d) => TORCH[d] === name);
}

export interface MergedExportOptions {
  /** the base model (folder or hub repo id) instead of the adapter's base_model_name_or_path */
  readonly base?: string;
  /** hub revision of the base (default: the adapter's recorded revision when the base comes from it) */
  readonly revision?: string;
  /** dtype of the float tensors written, but for those keptInFloat32 (default: the base's torch_dtype, else bf16) */
  readonly dtype?: ExportDtype;
  /** largest shard; more data goes into further shards listed by model.safetensors.index.json */
  readonly maxShardBytes: number;
  readonly force?: boolean;
  /** download progress for a hub base (default true) */
  readonly progress?: boolean;
  /** notices for the user (lossy merges, missing tokenizer) */
  readonly notice?: (message: string) => void;
  /** called before each tensor is read, with its index and the total */
  readonly onTensor?: (index: number, total: number, name: string) => void;
}

export interface MergedExportResult {
  readonly adapter: string;
  readonly base: string;
  readonly baseFolder: string;
  readonly folder: string;
  readonly dtype: ExportDtype;
  readonly tensors: number;
  readonly mergedLinears: number;
  /** tensor data bytes written */
  readonly bytes: number;
  readonly files: readonly string[];
  /** whether the merge went onto dequantized 4-bit weights */
  readonly quantizedBase: boolean;
}

/**
 * Writes the adapter at `source` (PEFT, checkpoint or run folder) merged into its base model as a
 * Hugging Face model folder `out`. The base is read one tensor at a time and `out` appears complete
 * or not at all.
 */
export async function exportMerged(source: string, out: string, options: MergedExportOptions): Promise<MergedExportResult> {
  const notice = options.notice ?? ((): void => {});
  const adapterDir = resolveAdapterPath(source);
  checkOutputFolder(out, options.force ?? false, [adapterDir]);
  const adapter = await readAdapter(adapterDir);
  const base = options.base ?? adapter.baseModelNameOrPath ?? undefined;
  if (base === undefined) throw new InputError(`${adapterDir}: adapter_config.json names no base model (base_model_name_or_path); pass --base MODEL`);
  if (options.base === undefined && path.isAbsolute(base) && !fs.existsSync(base)) {
    throw new InputError(`${adapterDir}: the base model it was trained on, ${base} (base_model_name_or_path in adapter_config.json), `
      + 'is not there any more; if it moved, pass --base NEW_FOLDER (or a hub repo id)');
  }
  const revision = options.revision ?? (options.base === undefined ? adapter.revision ?? undefined : undefined);
  const baseFolder = await resolveModelFolder(base, { ...(revision !== undefined ? { revision } : {}), progress: options.progress ?? true });
  checkOutputFolder(out, options.force ?? false, [baseFolder]);
  const config = readModelConfig(path.join(baseFolder, 'config.json'));
  const dtype = options.dtype ?? dtypeOfConfig(config.raw) ?? 'bf16';

  const checkpoint = describeBase(await openCheckpoint(baseFolder), config.model_type);
  try {
    const modules = new Map(checkAdapter(adapter, checkpoint.linears).map((m) => [m.path, m]));
    if (checkpoint.quantized.size > 0) {
      notice(`the base checkpoint ${base} holds 4-bit (bitsandbytes NF4) weights: merging onto their dequantized values is lossy; `
        + 'merging onto the original 16/32-bit checkpoint (--base MODEL) gives a better model');
    }
    const tensors = mergedTensors(checkpoint, modules, STORED[dtype], (name) => keptInFloat32(config.model_type, name), options.onTensor);
    if (!fs.existsSync(path.join(baseFolder, 'tokenizer.json'))) notice(`${baseFolder} has no tokenizer.json; the merged folder has none either`);
    const { weights, copied } = await writeModelFolder(out, baseFolder, mergedConfigJson(config.raw, dtype),
      (tmp) => writeShardedSafetensors(tmp, tensors, { maxShardBytes: options.maxShardBytes, metadata: { format: 'pt' } }));
    return {
      adapter: adapterDir, base, baseFolder, folder: out, dtype, tensors: tensors.length, mergedLinears: modules.size,
      bytes: weights.totalSize, files: [...weights.files, ...(weights.index ? [weights.index] : []), 'config.json', ...copied],
      quantizedBase: checkpoint.quantized.size > 0,
    };
  } finally {
    checkpoint.source.close();
  }
}

/** The base config.json with torch_dtype set to `dtype` and without a quantization_config. */
export function mergedConfigJson(raw: Readonly<Record<string, unknown>>, dtype: ExportDtype): string {
  const config: Record<string, unknown> = { ...raw, torch_dtype: TORCH[dtype] };
  delete config['quantization_config'];
  if ('dtype' in config) config['dtype'] = TORCH[dtype];
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * The tensors of the merged model in the checkpoint's order, each read when it is written: adapted
 * linears merged in float32, 4-bit weights dequantized (their bookkeeping tensors dropped), other
 * float tensors converted to `target` (F32 for those `keepF32` names; bytes copied as they are when
 * already stored so), the rest as is.
 */
function mergedTensors(
  checkpoint: BaseCheckpoint, modules: ReadonlyMap<string, CheckedModule>, target: 'BF16' | 'F16' | 'F32',
  keepF32: (name: string) => boolean, onTensor?: (index: number, total: number, name: string) => void,
): TensorToWrite[] {
  const { source } = checkpoint;
  const names = source.names().filter((n) => !checkpoint.isQuantState(n));
  return names.map((name, index): TensorToWrite => {
    const report = (): void => onTensor?.(index, names.length, name);
    const linearPath = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : '';
    const linear = checkpoint.linears.get(linearPath);
    const module = modules.get(linearPath);
    if (linear !== undefined && (module !== undefined || checkpoint.quantized.has(linearPath))) {
      const shape = [linear.outFeatures, linear.inFeatures] as const;
      return {
        name, dtype: target, shape,
        data: () => {
          report();
          const w = checkpoint.weight(linearPath);
          return fromFloat32(module ? mergedWeight(w, shape, module.a, module.b, module.scaling) : w, target);
        },
      };
    }
    const info = source.info(name);
    const want = keepF32(name) ? 'F32' : target;
    const convert = FLOAT_DTYPES.has(info.dtype) && info.dtype !== want;
    return {
      name, dtype: convert ? want : info.dtype, shape: info.shape,
      data: () => {
        report();
        return convert ? fromFloat32(source.readFloat32(name), want) : source.readBytes(name);
      },
    };
  });
}
