import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend, type BackendName } from '../engine/backend.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { InputError } from '../io/errors.js';
import type { TensorSource } from '../io/tensor-source.js';
import { resolveModelFolder } from '../hub/index.js';
import { readModelConfig, type ModelConfig } from '../models/config.js';
import { buildModel } from '../models/load.js';
import type { BlockwiseCausalLM } from '../models/model.js';
import type { QuantizationOptions } from '../quant/options.js';
import { loadTokenizer, type TextTokenizer } from '../tokenizer/tokenizer.js';

export interface ModelLocation {
  /** what the user named: a folder or a hub repo id */
  readonly name: string;
  /** the local folder holding config.json and the weights */
  readonly folder: string;
  readonly config: ModelConfig;
}

export interface OpenModelOptions {
  readonly revision?: string;
  readonly backend?: BackendName;
  /** a tokenizer.json (or a folder with one) to use instead of the model's */
  readonly tokenizer?: string;
  /** show download progress on stderr (default true) */
  readonly progress?: boolean;
  /**
   * Quantize on load (bits 4) or load every linear as float (bits 16). Absent: the checkpoint as it
   * is, so a bitsandbytes 4-bit folder loads its stored NF4 linears and a float folder stays float.
   */
  readonly quantization?: QuantizationOptions;
}

export interface OpenedModel extends ModelLocation {
  readonly model: BlockwiseCausalLM;
  readonly tokenizer: TextTokenizer;
  readonly backend: string;
  readonly loadSeconds: number;
}

/** Find a model folder (downloading into the HF cache when `name` is a hub repo id) and read its config. */
export async function locateModel(name: string, opts: OpenModelOptions = {}): Promise<ModelLocation> {
  const folder = await resolveModelFolder(name, {
    ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
    progress: opts.progress ?? true,
  });
  const configFile = path.join(folder, 'config.json');
  if (!fs.existsSync(configFile)) throw new InputError(`${folder}: no config.json in the model folder`);
  return { name, folder, config: readModelConfig(configFile) };
}

/** Open the weights of a located model, tensor by tensor. */
export function openWeights(location: ModelLocation): Promise<TensorSource> {
  return openCheckpoint(location.folder);
}

/** Locate, start the backend, load weights and tokenizer. */
export async function openModel(name: string, opts: OpenModelOptions = {}): Promise<OpenedModel> {
  const location = await locateModel(name, opts);
  const tokenizer = loadTokenizer(opts.tokenizer ?? location.folder);
  const backend = await initBackend(opts.backend ?? 'wasm');
  const started = performance.now();
  const source = await openWeights(location);
  let model: BlockwiseCausalLM;
  try {
    model = buildModel(location.config, source, opts.quantization !== undefined ? { quantization: opts.quantization } : {});
  } finally {
    source.close();
  }
  for (const w of model.warnings) process.stderr.write(`ditty: warning: ${w}\n`);
  return { ...location, model, tokenizer, backend, loadSeconds: (performance.now() - started) / 1000 };
}
