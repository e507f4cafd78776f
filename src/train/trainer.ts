import * as path from 'node:path';
import type { TrainConfig } from '../config/index.js';
import { Batcher, type Batch, type Block } from '../data/index.js';
import type { TrainEngine } from '../engine/engine.js';
import { InputError } from '../io/errors.js';
import type { AdapterMeta } from '../lora/adapter-config.js';
import type { LoraConfig } from '../lora/config.js';
import { cleanIncomplete, pruneCheckpoints, saveCheckpoint, type LogEntry, type TrainerState } from './checkpoint.js';
import { evaluateLoss } from './evaluate.js';
import { microBatchOf } from './micro-batch.js';
import { formatDuration, formatProgress, MetricsFile, ProgressLine } from './progress.js';
import { startOrResume } from './resume.js';
import { learningRate } from './schedule.js';
import { ReportUpdater } from '../report/report-updater.js';
import type { StopSignals } from './stop-signals.js';
import { SAMPLES_FILE } from '../report/run-report.js';
import { remainingSeconds, roundsBetween } from './estimate.js';
import type { SampleWriter } from './samples.js';

export interface TrainerSetup {
  readonly engine: TrainEngine;
  /** module paths of the adapted linears, in adapter order */
  readonly adaptedModules: readonly string[];
  readonly loraConfig: LoraConfig;
  readonly adapterMeta: AdapterMeta;
  readonly train: readonly Block[];
  readonly validation: readonly Block[];
  readonly config: TrainConfig;
  readonly configYaml: string;
  readonly dataFingerprint: string;
  /** a checkpoint folder to continue from */
  readonly resumeFrom?: string;
  /** stop (with a checkpoint) after this many optimizer steps of this process; for tests */
  readonly stopAfterSteps?: number;
  readonly progress?: ProgressLine;
  /** SIGINT/SIGTERM: the loop stops after the current step when one arrives */
  readonly signals: StopSignals;
  /** sample generations of eval.prompts, when there are any */
  readonly samples?: SampleWriter;
}

export interface TrainSummary {
  readonly steps: number;
  readonly startStep: number;
  readonly losses: readonly number[];
  readonly finalLoss: number;
  readonly valLoss?: number;
  readonly tokens: number;
  readonly seconds: number;
  readonly lastCheckpoint?: string;
  /** the signal that stopped the run early, if any */
  readonly interrupted?: NodeJS.Signals;
  /** the whole run's time projected from the first steps of this process */
  readonly estimatedSeconds?: number;
}

/** Steps of this process timed before the whole run's time is projected (the first one warms up). */
export const ESTIMATE_AFTER_STEPS = 2;

/** Optimizer steps in one epoch: an epoch's last step takes the batches that are left. */
export function stepsPerEpoch(config: TrainConfig, trainBlocks: number): number {
  return Math.ceil(Math.ceil(trainBlocks / config.training.batch_size) / config.training.grad_accum);
}

/** Optimizer steps a config asks for: max_steps, else epochs over the training blocks. */
export function totalSteps(config: TrainConfig, trainBlocks: number): number {
  if (config.training.max_steps !== undefined) return config.training.max_steps;
  return Math.max(1, Math.ceil(config.training.epochs * stepsPerEpoch(config, trainBlocks)));
}

/** Training that cannot go on (divergence): the user's settings, not a bug; printed as one line. */
export class TrainingError extends InputError {}

/** The LoRA settings a checkpoint's weights only make sense with. */
function loraSignature(setup: TrainerSetup): TrainerState['lora'] {
  const c = setup.loraConfig;
  return { r: c.r, alpha: c.alpha, use_rslora: c.useRslora, modules: [...setup.adaptedModules] };
}

/**
 * One optimizer step's loss over its micro-batches, each normalized by the step's loss positions,
 * with the gradients accumulated in the engine; micro-batch k draws dropout masks for micro-step
 * firstMicroStep + k. `tokens`: positions computed; `hasGradients` false when no position counts.
 */
async function accumulateGradients(
  engine: TrainEngine, micro: readonly Batch[], blockSize: number, firstMicroStep: number,
): Promise<{ loss: number; tokens: number; hasGradients: boolean }> {
  const normalizer = micro.reduce((n, b) => n + b.targets, 0);
  let loss = 0;
  let tokens = 0;
  if (normalizer === 0) return { loss, tokens, hasGradients: false };
  for (let k = 0; k < micro.length; k++) {
    const mb = microBatchOf(micro[k]!, blockSize);
    tokens += mb.rows * mb.length;
    loss += engine.accumulate(mb, normalizer, firstMicroStep + k);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { loss, tokens, hasGradients: true };
}

/** The training loop: accumulation, clipping, AdamW, schedule, logging, checkpoints, resume, signals. */
export async function runTraining(setup: TrainerSetup): Promise<TrainSummary> {
  const { engine, config } = setup;
  const t = config.training;
  const runDir = config.output.dir;
  const progress = setup.progress ?? new ProgressLine();
  const blockSize = setup.train[0]?.input.length;
  if (blockSize === undefined) throw new InputError('the dataset produced no training blocks');
  const total = totalSteps(config, setup.train.length);
  const batcher = new Batcher(setup.train, { batchSize: t.batch_size, seed: t.seed, shuffle: config.data.shuffle });
  const metrics = new MetricsFile(path.join(runDir, 'metrics.jsonl'));
  const sampleLog = new MetricsFile(path.join(runDir, SAMPLES_FILE));
  const report = new ReportUpdater(runDir, (m) => progress.log(m));

  const removed = await cleanIncomplete(runDir);
  if (removed > 0) progress.log(`removed ${removed} incomplete checkpoint folder(s) left by an interrupted save`);
  const schedule = { kind: t.lr_scheduler, learning_rate: t.learning_rate, warmup_steps: t.warmup_steps, total_steps: total };
  let state: TrainerState = {
    format: 1, global_step: 0, total_steps: total, epoch: 0, batcher: batcher.state(), tokens_seen: 0,
    elapsed_seconds: 0, seed: t.seed, data_fingerprint: setup.dataFingerprint, log_history: [],
    batch_size: t.batch_size, grad_accum: t.grad_accum, lora: loraSignature(setup), schedule,
    rng: { seed: t.seed, next_micro_step: 0 },
  };
  state = await startOrResume(state, {
    engine, batcher, runDir, resumeFrom: setup.resumeFrom, keepLast: config.output.keep_last,
    logs: [metrics, sampleLog], log: (m) => progress.log(m),
  });
  if (t.eval_every !== undefined && setup.validation.length === 0) {
    progress.log('warning: training.eval_every is set but the validation split produced no blocks; no validation loss will be reported');
  }

  const startStep = state.global_step;
  const losses: number[] = [];
  let lastCheckpoint: string | undefined;
  const saved = (): string => {
    const last = lastCheckpoint ?? setup.resumeFrom;
    return last !== undefined ? `the last complete checkpoint is ${last}` : 'no checkpoint was saved';
  };
  const { signals } = setup;
  let lastVal: number | undefined;
  const started = performance.now() - state.elapsed_seconds * 1000;
  let tokensThisProcess = 0;
  const processStart = performance.now();
  const save = async (): Promise<void> => {
    state.elapsed_seconds = (performance.now() - started) / 1000;
    state.batcher = batcher.state();
    state.rng = { seed: t.seed, next_micro_step: state.global_step * t.grad_accum };
    lastCheckpoint = await saveCheckpoint(runDir, {
      state, adapter: engine.adapterTensors(), loraConfig: setup.loraConfig, adapterMeta: setup.adapterMeta,
      optimizer: engine.optimizerState().slots, configYaml: setup.configYaml,
    });
    await pruneCheckpoints(runDir, config.output.keep_last);
  };

  const { samples } = setup;
  let sampleSeconds: number | undefined;
  const writeSamples = async (writer: SampleWriter): Promise<void> => {
    const t0 = performance.now();
    await writer.write(engine, state.global_step);
    sampleSeconds = (performance.now() - t0) / 1000;
  };
  let estimatedSeconds: number | undefined;
  let stepStarted = performance.now();

  // before training starts, so a signal during these samples still stops at once; the report
  // follows at the first logged step (it needs metrics.jsonl)
  if (state.global_step === 0 && samples?.due(0, false)) await writeSamples(samples);
  signals.training(saved);
  try {
    while (state.global_step < total) {
      const step = state.global_step;
      stepStarted = performance.now();
      const micro = batcher.nextWithinEpoch(t.grad_accum);
      const { loss, tokens, hasGradients } = await accumulateGradients(engine, micro, blockSize, step * t.grad_accum);
      const lr = learningRate(t.lr_scheduler, t.learning_rate, step, t.warmup_steps, total);
      let gradNorm = 0;
      if (hasGradients) {
        // the step is not taken when the norm is not finite
        gradNorm = Number.isFinite(loss) ? engine.step(lr, t.max_grad_norm) : NaN;
        if (!Number.isFinite(gradNorm) || !Number.isFinite(loss)) {
          throw new TrainingError(`step ${step + 1}: the loss or gradient is not finite (loss ${loss}, grad norm ${gradNorm}); lower training.learning_rate`);
        }
      }
      state.global_step++;
      state.tokens_seen += tokens;
      tokensThisProcess += tokens;
      state.epoch = batcher.epochsDone();
      const elapsed = (performance.now() - started) / 1000;
      const entry: LogEntry = {
        step: state.global_step, loss, lr, grad_norm: gradNorm, tokens, micro_batches: micro.length,
        tokens_per_s: tokensThisProcess / ((performance.now() - processStart) / 1000), elapsed, epoch: state.epoch,
      };
      const isLast = state.global_step === total;
      if (state.global_step - startStep === ESTIMATE_AFTER_STEPS && !isLast) {
        const stepSeconds = (performance.now() - stepStarted) / 1000;
        estimatedSeconds = elapsed + remainingSeconds({
          stepSeconds, remainingSteps: total - state.global_step,
          blocksPerStep: t.batch_size * t.grad_accum, validationBlocks: setup.validation.length,
          validationRounds: setup.validation.length > 0 ? roundsBetween(state.global_step - 1, total, t.eval_every) : 0,
          sampleRounds: samples ? roundsBetween(state.global_step - 1, total, config.eval.every) : 0,
          ...(sampleSeconds !== undefined ? { sampleSeconds } : {}),
        });
        entry.estimated_total_s = estimatedSeconds;
        progress.log(`time estimate: about ${formatDuration(estimatedSeconds)} for the whole run of ${total} steps `
          + `(${stepSeconds.toFixed(2)} s per step after warm-up${setup.validation.length > 0 ? ', with validation' : ''}`
          + `${samples ? (sampleSeconds !== undefined ? ' and samples' : '; samples not counted') : ''})`);
      }
      if (setup.validation.length > 0 && ((t.eval_every !== undefined && state.global_step % t.eval_every === 0) || isLast)) {
        lastVal = evaluateLoss(engine, setup.validation, t.batch_size);
        if (lastVal !== undefined) entry.val_loss = lastVal;
      }
      const samplesDue = samples?.due(state.global_step, isLast) ?? false;
      if (samples && samplesDue) await writeSamples(samples);
      losses.push(loss);
      metrics.append(entry);
      state.log_history = [...state.log_history, entry].slice(-100);
      const rate = (state.global_step - startStep) / ((performance.now() - processStart) / 1000);
      const line = formatProgress(entry, total, (total - state.global_step) / rate);
      if (state.global_step % t.log_every === 0 || isLast || entry.val_loss !== undefined || samplesDue) {
        progress.update(line);
        await report.update(isLast || entry.val_loss !== undefined || samplesDue);
      } else {
        progress.status(line);
      }
      const stopHere = signals.requested !== undefined || (setup.stopAfterSteps !== undefined && state.global_step - startStep >= setup.stopAfterSteps);
      if (state.global_step % config.output.checkpoint_every === 0 || isLast || stopHere) await save();
      // a signal that arrived while saving (the only await) stops here too, not one step later
      if (stopHere || signals.requested !== undefined) break;
    }
  } finally {
    progress.done();
  }
  const interrupted = signals.requested;
  if (interrupted !== undefined) {
    progress.log(`${interrupted}: stopped at step ${state.global_step} of ${total}; ${saved()}; run the same command to resume`);
  } else {
    signals.finished(() => `training is complete; ${saved()}`);
  }
  return {
    steps: state.global_step, startStep, losses, finalLoss: losses.at(-1) ?? NaN, tokens: state.tokens_seen,
    seconds: (performance.now() - started) / 1000,
    ...(lastVal !== undefined ? { valLoss: lastVal } : {}),
    ...(lastCheckpoint !== undefined ? { lastCheckpoint } : {}),
    ...(interrupted !== undefined ? { interrupted } : {}),
    ...(estimatedSeconds !== undefined ? { estimatedSeconds } : {}),
  };
}
