/** `ditty quantize`: a model folder rewritten as a bitsandbytes 4-bit (NF4) checkpoint, tensor by tensor. */
import * as fs from 'node:fs';
import { InputError } from '../io/errors.js';
import { writeModelFolder } from '../io/model-folder.js';
import { checkOutputFolder, type OutputFolderMessages } from '../io/output-folder.js';
import { checkpointLinears } from '../models/load.js';
import { isBnb4bitConfig } from '../quant/bnb-checkpoint.js';
import type { ComputeDtype } from '../quant/bnb-format.js';
import { quantizedLinearSelector, type QuantizationOptions } from '../quant/options.js';
import { quantizedConfigJson, rwkvRescaleConflicts, writeQuantizedWeights, type QuantizeSummary } from '../quant/write-checkpoint.js';
import { locateModel, openWeights } from '../runtime/open-model.js';

export interface QuantizeModelOptions {
  readonly out: string;
  readonly quantization: QuantizationOptions;
  readonly computeDtype: ComputeDtype;
  readonly maxShardBytes: number;
  readonly revision?: string;
  /** replace a non-empty `out` */
  readonly force?: boolean;
  /** download progress of a hub model */
  readonly progress?: boolean;
  readonly onProgress?: (done: number, total: number) => void;
  /** how the refusals of `out` are worded */
  readonly outMessages?: OutputFolderMessages;
}

export interface QuantizedModel {
  readonly summary: QuantizeSummary;
  /** the linears kept in float (skip list and never-quantized ones) */
  readonly floatLinears: readonly string[];
  /** the files of the written folder, sorted */
  readonly files: readonly string[];
  /** an RWKV model whose rescale_every transformers would apply to the 4-bit weights (RWKV_RESCALE_NOTICE) */
  readonly rwkvRescaleConflict: boolean;
}

export async function quantizeModel(model: string, o: QuantizeModelOptions): Promise<QuantizedModel> {
  const location = await locateModel(model, { ...(o.revision !== undefined ? { revision: o.revision } : {}), progress: o.progress ?? true });
  const { config, folder } = location;
  if (isBnb4bitConfig(config.raw, config.file)) throw new InputError(`${config.file}: the model is already a bitsandbytes 4-bit checkpoint`);
  checkOutputFolder(o.out, o.force === true, [folder], o.outMessages);
  const source = await openWeights(location);
  try {
    const linears = checkpointLinears(source, config.model_type);
    const quantizes = quantizedLinearSelector(linears, o.quantization);
    const options = {
      quantization: o.quantization, computeDtype: o.computeDtype, maxShardBytes: o.maxShardBytes,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    };
    const { weights } = await writeModelFolder(o.out, folder, quantizedConfigJson(config.raw, config.model_type, options, linears),
      (tmp) => writeQuantizedWeights(source, linears, tmp, options));
    return {
      summary: weights, floatLinears: linears.paths.filter((p) => !quantizes(p)), files: fs.readdirSync(o.out).sort(),
      rwkvRescaleConflict: rwkvRescaleConflicts(config.raw, config.model_type),
    };
  } finally {
    source.close();
  }
}
