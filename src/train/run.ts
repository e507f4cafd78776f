import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadTrainConfig, resolvedConfigYaml, resolveTargetModules, type TrainConfig } from '../config/index.js';
import { formatDataStats, prepareDataset, type PreparedDataset } from '../data/index.js';
import type { BackendName } from '../engine/backend.js';
import { InputError } from '../io/errors.js';
import type { LoraConfig } from '../lora/config.js';
import { injectLora } from '../lora/lora-linear.js';
import { openModel, type OpenedModel } from '../runtime/open-model.js';
import { latestCheckpoint, TRAINER_STATE } from '../runtime/run-folder.js';
import { lockRunFolder } from './run-lock.js';
import { tapeBytes, WASM_HEAP_BYTES } from './memory-estimate.js';
import type { ModelConfig } from '../models/config.js';
import { ProgressLine } from './progress.js';
import { runTraining, totalSteps, type TrainSummary } from './trainer.js';

export interface TrainCommandOptions {
  readonly overrides?: readonly string[];
  /** a checkpoint folder to resume from, or false to start over even if output.dir has checkpoints */
  readonly resume?: string | false;
  readonly stopAfterSteps?: number;
}

/** A hash of the training blocks and the settings that made them, stored in checkpoints. */
export function dataFingerprint(data: PreparedDataset, config: TrainConfig): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ block: config.data.block_size, packing: config.data.packing, train: data.train.length, validation: data.validation.length }));
  for (const b of [...data.train, ...data.validation]) {
    h.update(new Uint8Array(b.input.buffer, b.input.byteOffset, b.input.byteLength));
    h.update(b.weight);
  }
  return h.digest('hex').slice(0, 32);
}

function backendFor(config: TrainConfig): BackendName {
  if (config.backend === 'cuda') {
    throw new InputError('backend "cuda": ditty\'s CUDA backend is not built yet; use backend: wasm (or tensorflow with @tensorflow/tfjs-node-gpu installed)');
  }
  return config.backend;
}

function loraConfigOf(config: TrainConfig, modelType: string): LoraConfig {
  const targets = resolveTargetModules(config, modelType);
  if (!targets) throw new InputError(`lora.target_modules: no default for model type "${modelType}"; list the linears to adapt`);
  return {
    r: config.lora.r, alpha: config.lora.alpha, dropout: config.lora.dropout, targetModules: [...targets],
    useRslora: config.lora.use_rslora, bias: 'none', fanInFanOut: false,
  };
}

/** `ditty train CONFIG`: load the config, model, adapters and data, then train (resuming when there is a checkpoint). */
export async function trainFromConfig(configFile: string, opts: TrainCommandOptions = {}): Promise<TrainSummary> {
  const config = loadTrainConfig(configFile, opts.overrides ?? []);
  const progress = new ProgressLine();
  const log = (m: string): void => progress.log(m);
  const backend = backendFor(config);
  if (typeof opts.resume === 'string') {
    if (!fs.existsSync(opts.resume)) throw new InputError(`--resume ${opts.resume}: no such checkpoint folder`);
    // before the model and data are loaded, which can take minutes
    if (!fs.existsSync(path.join(opts.resume, TRAINER_STATE))) {
      throw new InputError(`--resume ${opts.resume}: not a complete ditty checkpoint folder (no ${TRAINER_STATE})`);
    }
  }
  const release = lockRunFolder(config.output.dir);
  try {
    return await trainLocked(config, opts, backend, log, progress);
  } finally {
    release();
  }
}

async function trainLocked(config: TrainConfig, opts: TrainCommandOptions, backend: BackendName, log: (m: string) => void, progress: ProgressLine): Promise<TrainSummary> {
  const opened: OpenedModel = await openModel(config.model.name_or_path, {
    revision: config.model.revision, backend,
    ...(config.model.tokenizer !== undefined ? { tokenizer: config.model.tokenizer } : {}),
    quantization: {
      bits: config.quantization.bits, doubleQuant: config.quantization.double_quant,
      blocksize: config.quantization.blocksize, skipModules: config.quantization.skip_modules,
    },
  });
  const { model } = opened;
  try {
    const modelType = opened.config.model_type;
    if (config.training.compute_dtype !== 'fp32') {
      log(`compute dtype: ${config.training.compute_dtype} requested; the ${opened.backend} backend computes in fp32, so training runs in fp32`);
    }
    const loraConfig = loraConfigOf(config, modelType);
    const layers = injectLora(model.linears, loraConfig, config.training.seed, { otherNames: model.otherParams.keys() });
    const trainable = layers.reduce((n, l) => n + l.loraA.size + l.loraB.size, 0);
    log(`model ${config.model.name_or_path} (${modelType}, ${model.numLayers} layers) on ${opened.backend}, `
      + `${config.quantization.bits === 4 ? 'NF4' : 'float'} base, LoRA r ${loraConfig.r} alpha ${loraConfig.alpha} on `
      + `${layers.length} linears (${trainable.toLocaleString('en-US')} trainable parameters)`);
    const data = await prepareDataset({
      dataset: config.data.dataset, revision: config.data.revision, file: config.data.file,
      format: config.data.format, textField: config.data.text_field, blockSize: config.data.block_size,
      packing: config.data.packing, trainOn: config.data.train_on, validationFraction: config.data.validation_fraction,
      ...(config.data.max_rows !== undefined ? { maxRows: config.data.max_rows } : {}),
      onBadRow: config.data.on_bad_row, seed: config.training.seed, shuffle: config.data.shuffle,
    }, opened.tokenizer);
    for (const w of data.warnings) log(`warning: ${w}`);
    log(formatDataStats(data.stats));
    const effective = withCheckpointingIfNeeded(config, opened.backend, log, opened.config, data.train.length);
    const total = totalSteps(config, data.train.length);
    log(`training ${total} optimizer steps of ${config.training.batch_size} x ${config.training.grad_accum} blocks of `
      + `${config.data.block_size} tokens; checkpoints every ${config.output.checkpoint_every} steps in ${config.output.dir}`);
    const resumeFrom = opts.resume === false ? undefined
      : opts.resume ?? (config.output.resume ? latestCheckpoint(config.output.dir) : undefined);
    fs.mkdirSync(config.output.dir, { recursive: true });
    const summary = await runTraining({
      model, layers, loraConfig, config: effective,
      adapterMeta: { baseModelNameOrPath: baseModelName(config), revision: config.model.revision },
      train: data.train, validation: data.validation, configYaml: resolvedConfigYaml(config),
      dataFingerprint: dataFingerprint(data, config), progress,
      ...(resumeFrom !== undefined ? { resumeFrom } : {}),
      ...(opts.stopAfterSteps !== undefined ? { stopAfterSteps: opts.stopAfterSteps } : {}),
    });
    return summary;
  } finally {
    model.dispose();
    tf.disposeVariables();
  }
}

/**
 * On wasm the tape of a large block would not fit the 4 GiB heap; recompute blocks instead of failing
 * half way through the first step, and say so. A micro-batch holds at most `trainBlocks` blocks.
 */
export function withCheckpointingIfNeeded(
  config: TrainConfig, backend: string, log: (m: string) => void, model: ModelConfig, trainBlocks: number,
): TrainConfig {
  if (backend !== 'wasm' || config.training.gradient_checkpointing) return config;
  const bytes = tapeBytes(model, Math.min(config.training.batch_size, trainBlocks), config.data.block_size);
  if (bytes < 0.6 * WASM_HEAP_BYTES) return config;
  log(`gradient checkpointing: turned on, because one micro-batch would keep about ${(bytes / 2 ** 30).toFixed(1)} GiB of `
    + `activations and the wasm heap holds at most 4 GiB (set training.gradient_checkpointing: true to silence this)`);
  return { ...config, training: { ...config.training, gradient_checkpointing: true } };
}

/** What adapter_config.json records as the base: a hub id as given, a local folder as an absolute path. */
function baseModelName(config: TrainConfig): string {
  const p = config.model.name_or_path;
  return fs.existsSync(p) ? path.resolve(p) : p;
}
