import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTrainConfig, resolvedConfigYaml, resolveTargetModules, type TrainConfig } from '../config/index.js';
import { formatDataStats, prepareDataset, type PreparedDataset } from '../data/index.js';
import { readMetrics } from '../report/metrics.js';
import { METRICS_FILE } from '../report/run-report.js';
import { resolveBackend } from '../engine/choice.js';
import type { Checkpointing } from '../engine/engine.js';
import { InputError } from '../io/errors.js';
import { loraConfigOf, type LoraConfig } from '../lora/config.js';
import { openEngine, type OpenedEngine } from '../runtime/open-engine.js';
import { locateModel, openWeights, type ModelLocation } from '../runtime/open-model.js';
import { loadTokenizer, type TextTokenizer } from '../tokenizer/tokenizer.js';
import { TRAINER_STATE } from '../runtime/run-folder.js';
import { resumableCheckpoint } from './checkpoint.js';
import { lockRunFolder } from './run-lock.js';
import { StopSignals } from './stop-signals.js';
import { tapeBytes, WASM_HEAP_BYTES } from './memory-estimate.js';
import { contextWindow, type ModelConfig } from '../models/config.js';
import { evaluateBeforeAfter, validationExamples, writeBeforeAfter } from '../eval/held-out.js';
import { writeDataStats } from '../report/run-report.js';
import { modelCard, writeFinalAdapter } from './final-adapter.js';
import { checkBlockSize, checkEpochs, estimateMemory, formatMemoryEstimate, renderBlock } from './preflight.js';
import { ProgressLine } from './progress.js';
import { readPrompts, SampleWriter } from './samples.js';
import { ESTIMATE_AFTER_STEPS, runTraining, totalSteps, type TrainSummary } from './trainer.js';

export interface TrainCommandOptions {
  readonly overrides?: readonly string[];
  /** a checkpoint folder to resume from, or false to start over even if output.dir has checkpoints */
  readonly resume?: string | false;
  readonly stopAfterSteps?: number;
}

export interface TrainOutcome extends TrainSummary {
  /** the final adapter folder, when the run reached its last step */
  readonly adapterDir?: string;
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

function runLoraConfig(config: TrainConfig, modelType: string): LoraConfig {
  const targets = resolveTargetModules(config, modelType);
  if (!targets) throw new InputError(`lora.target_modules: no default for model type "${modelType}"; list the linears to adapt`);
  return loraConfigOf(config.lora, targets);
}

/** `ditty train CONFIG`: load the config, model, adapters and data, then train (resuming when there is a checkpoint). */
export async function trainFromConfig(configFile: string, opts: TrainCommandOptions = {}): Promise<TrainOutcome> {
  const config = loadTrainConfig(configFile, opts.overrides ?? []);
  const progress = new ProgressLine();
  const log = (m: string): void => progress.log(m);
  // from here on SIGINT and SIGTERM stop the run cleanly, with a line saying what is saved
  const signals = new StopSignals(log).install();
  let release: (() => void) | undefined;
  try {
    if (typeof opts.resume === 'string') {
      if (!fs.existsSync(opts.resume)) throw new InputError(`--resume ${opts.resume}: no such checkpoint folder`);
      // before the model and data are loaded, which can take minutes
      if (!fs.existsSync(path.join(opts.resume, TRAINER_STATE))) {
        throw new InputError(`--resume ${opts.resume}: not a complete ditty checkpoint folder (no ${TRAINER_STATE})`);
      }
    }
    // an engine that cannot run here is refused before anything loads
    const backend = resolveBackend(config.backend);
    release = lockRunFolder(config.output.dir);
    return await trainLocked(config, opts, backend, log, progress, signals);
  } finally {
    signals.dispose();
    release?.();
  }
}

interface PreparedRun {
  readonly location: ModelLocation;
  readonly tokenizer: TextTokenizer;
  readonly loraConfig: LoraConfig;
  readonly prompts: string[];
  readonly data: PreparedDataset;
}

/** The model located, the data prepared and everything checked that can be before the weights load. */
async function prepareRun(config: TrainConfig, log: (m: string) => void): Promise<PreparedRun> {
  const location = await locateModel(config.model.name_or_path, { revision: config.model.revision });
  const blockWarning = checkBlockSize(config, location.config);
  if (blockWarning !== undefined) log(`warning: ${blockWarning}`);
  const prompts = readPrompts(config.eval.prompts);
  const tokenizer = loadTokenizer(config.model.tokenizer ?? location.folder);
  const loraConfig = runLoraConfig(config, location.config.model_type);
  const data = await prepareDataset(config, tokenizer);
  for (const w of data.warnings) log(`warning: ${w}`);
  const epochWarning = checkEpochs(config, data.train.length);
  if (epochWarning !== undefined) log(`warning: ${epochWarning}`);
  return { location, tokenizer, loraConfig, prompts, data };
}

/** The memory estimate line, from the checkpoint's tensor shapes. */
async function memoryLine(config: TrainConfig, location: ModelLocation, loraConfig: LoraConfig, checkpointing: Checkpointing): Promise<string> {
  const source = await openWeights(location);
  try {
    return formatMemoryEstimate(estimateMemory(config, location.config, source, loraConfig, checkpointing));
  } finally {
    source.close();
  }
}

/**
 * `ditty train --dry-run`: validates the config, resolves the model and data, and returns what a run
 * would start from (data statistics, one block as the model sees it, the memory estimate) without
 * loading the weights or writing anything.
 */
export async function dryRun(configFile: string, opts: Pick<TrainCommandOptions, 'overrides'> = {}): Promise<string> {
  const config = loadTrainConfig(configFile, opts.overrides ?? []);
  const log = (m: string): void => { process.stderr.write(`${m}\n`); };
  // a dry run may plan a run for another machine: an engine that cannot run here is reported, not refused
  let engineText: string;
  let backendName = 'native';
  try {
    const { resolved, note } = resolveBackend(config.backend);
    if (note !== undefined) log(note);
    engineText = resolved.engine === 'tfjs' ? `tfjs ${resolved.backend}` : `native ${resolved.device}`;
    if (resolved.engine === 'tfjs') backendName = resolved.backend;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    engineText = `${config.backend}, which cannot run on this machine (${err.message})`;
  }
  const { location, tokenizer, loraConfig, prompts, data } = await prepareRun(config, log);
  const effective = withCheckpointingIfNeeded(config, backendName, log, location.config, data.train.length);
  const total = totalSteps(config, data.train.length);
  const t = config.training;
  return [
    `config ${configFile}: valid; model ${config.model.name_or_path} (${location.config.model_type}, ${location.config.num_hidden_layers} layers, `
      + `in ${location.folder}); engine ${engineText}`,
    formatDataStats(data.stats),
    `${total} optimizer steps of ${t.batch_size} x ${t.grad_accum} blocks; output would go to ${config.output.dir}`
      + `${prompts.length > 0 ? `; ${prompts.length} sample prompt(s) every ${config.eval.every} steps` : ''}`,
    `one training block as the model sees it (the loss counts the text between ▶ and ◀):`,
    renderBlock(data.train[0]!, (ids) => tokenizer.decode(ids)),
    await memoryLine(effective, location, loraConfig, checkpointingOf(effective.training.gradient_checkpointing)),
    'time estimate: not made by a dry run (it times the first training steps, which needs the model loaded); '
      + `ditty train prints it after its first ${ESTIMATE_AFTER_STEPS} steps`,
    'dry run: nothing was written',
  ].join('\n');
}

async function trainLocked(
  config: TrainConfig, opts: TrainCommandOptions, backend: ReturnType<typeof resolveBackend>, log: (m: string) => void, progress: ProgressLine,
  signals: StopSignals,
): Promise<TrainOutcome> {
  const revision = config.model.revision;
  const { location, loraConfig, prompts, data } = await prepareRun(config, log);
  const modelType = location.config.model_type;
  log(formatDataStats(data.stats));
  await writeDataStats(config.output.dir, data.stats);
  const { resolved } = backend;
  const effective = withCheckpointingIfNeeded(config, resolved.engine === 'tfjs' ? resolved.backend : 'native', log, location.config, data.train.length);
  const t = effective.training;
  log(await memoryLine(effective, location, loraConfig, checkpointingOf(t.gradient_checkpointing)));
  const opened: OpenedEngine = await openEngine(config.model.name_or_path, {
    backend: config.backend, resolved: backend, revision, location, log,
    ...(config.model.tokenizer !== undefined ? { tokenizer: config.model.tokenizer } : {}),
    quantization: {
      bits: config.quantization.bits, doubleQuant: config.quantization.double_quant,
      blocksize: config.quantization.blocksize, skipModules: config.quantization.skip_modules,
    },
    lora: { config: loraConfig, seed: t.seed },
    adamw: { beta1: t.adam_beta1, beta2: t.adam_beta2, epsilon: t.adam_epsilon, weightDecay: t.weight_decay },
    checkpointing: checkpointingOf(t.gradient_checkpointing), computeDtype: t.compute_dtype,
  });
  const { engine } = opened;
  try {
    if (t.compute_dtype !== 'auto' && t.compute_dtype !== engine.computeDtype && opened.engineKind === 'tfjs') {
      log(`compute dtype: ${t.compute_dtype} requested; the ${engine.description} engine computes in fp32, so training runs in fp32`);
    }
    const trainable = engine.adapterTensors().reduce((n, w) => n + w.values.length, 0);
    log(`model ${config.model.name_or_path} (${modelType}, ${location.config.num_hidden_layers} layers) on ${engine.description}, `
      + `${config.quantization.bits === 4 ? 'NF4' : 'float'} base, LoRA r ${loraConfig.r} alpha ${loraConfig.alpha} on `
      + `${opened.adaptedModules.length} linears (${trainable.toLocaleString('en-US')} trainable parameters)`);
    const total = totalSteps(config, data.train.length);
    log(`training ${total} optimizer steps of ${t.batch_size} x ${t.grad_accum} blocks of `
      + `${config.data.block_size} tokens; checkpoints every ${config.output.checkpoint_every} steps in ${config.output.dir}`);
    const resumeFrom = opts.resume === false ? undefined
      : opts.resume ?? (config.output.resume ? resumableCheckpoint(config.output.dir, log) : undefined);
    const samples = prompts.length > 0 ? new SampleWriter(config.output.dir, prompts, config, opened.tokenizer, opened.config, log) : undefined;
    const summary = await runTraining({
      engine, adaptedModules: opened.adaptedModules, loraConfig, config: effective,
      adapterMeta: { baseModelNameOrPath: baseModelName(config), revision: config.model.revision },
      train: data.train, validation: data.validation, configYaml: resolvedConfigYaml(config),
      dataFingerprint: dataFingerprint(data, config), progress, signals, ...(samples !== undefined ? { samples } : {}),
      ...(resumeFrom !== undefined ? { resumeFrom } : {}),
      ...(opts.stopAfterSteps !== undefined ? { stopAfterSteps: opts.stopAfterSteps } : {}),
    });
    if (summary.losses.length === 0 || summary.interrupted || summary.steps < total) return summary;
    let beforeAfter;
    if (config.data.validation_fraction > 0) {
      beforeAfter = evaluateBeforeAfter(engine, await validationExamples(config, opened.tokenizer), contextWindow(opened.config));
      await writeBeforeAfter(config.output.dir, beforeAfter);
    }
    const configYaml = resolvedConfigYaml(config);
    const baseModel = baseModelName(config);
    const adapterDir = await writeFinalAdapter(config.output.dir, {
      adapter: engine.adapterTensors(), loraConfig, adapterMeta: { baseModelNameOrPath: baseModel, revision: config.model.revision }, configYaml,
      card: modelCard({
        config, configYaml, baseModel, stats: data.stats, entries: readMetrics(path.join(config.output.dir, METRICS_FILE)), trainableParameters: trainable,
        ...(beforeAfter !== undefined ? { beforeAfter } : {}),
      }),
    });
    log(`final adapter: ${adapterDir} (PEFT files, README.md model card, config.yaml)`);
    return { ...summary, adapterDir };
  } finally {
    opened.dispose();
  }
}

/** The checkpointing policy of `training.gradient_checkpointing` (true means full, false none). */
export function checkpointingOf(value: boolean | Checkpointing): Checkpointing {
  return value === true ? 'full' : value === false ? 'none' : value;
}

/**
 * On wasm the tape of a large block would not fit the 4 GiB heap; recompute blocks instead of failing
 * half way through the first step, and say so. A micro-batch holds at most `trainBlocks` blocks.
 */
export function withCheckpointingIfNeeded(
  config: TrainConfig, backend: string, log: (m: string) => void, model: ModelConfig, trainBlocks: number,
): TrainConfig {
  if (backend !== 'wasm' || checkpointingOf(config.training.gradient_checkpointing) !== 'none') return config;
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
