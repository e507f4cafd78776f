/** Where a training run starts: fresh (earlier outputs set aside) or from a checkpoint it may continue. */
import * as path from 'node:path';
import type { Batcher } from '../data/index.js';
import type { TrainEngine } from '../engine/engine.js';
import { InputError } from '../io/errors.js';
import { loadCheckpoint, pruneCheckpoints, setAsideCheckpoints, type TrainerState } from './checkpoint.js';
import { FINAL_ADAPTER_DIR } from './final-adapter.js';
import type { MetricsFile } from './progress.js';

export interface RunStart {
  readonly engine: TrainEngine;
  readonly batcher: Batcher;
  readonly runDir: string;
  /** a checkpoint folder to continue from; none: start over */
  readonly resumeFrom?: string | undefined;
  readonly keepLast: number;
  /** the run's step logs (metrics, samples): set aside on a fresh start, cut back to the checkpoint on a resume */
  readonly logs: readonly MetricsFile<{ readonly step: number }>[];
  readonly log: (message: string) => void;
}

/**
 * The state training starts from. Fresh: `fresh`, with the earlier run's checkpoints, logs and final
 * adapter moved aside. Resumed: the checkpoint's adapter, optimizer, data position and counters, with
 * this run's step count, schedule and settings; later checkpoints are moved aside, an interrupted
 * pruning finished and the logs cut back to the checkpoint's step.
 */
export async function startOrResume(fresh: TrainerState, o: RunStart): Promise<TrainerState> {
  const logFiles = o.logs.map((l) => l.file);
  if (!o.resumeFrom) {
    const aside = await setAsideCheckpoints(o.runDir, [...logFiles, path.join(o.runDir, FINAL_ADAPTER_DIR)], 0);
    if (aside) o.log(`starting over: moved the earlier run's checkpoints and metrics to ${aside}`);
    return fresh;
  }
  const ck = loadCheckpoint(o.resumeFrom);
  checkResumable(o.resumeFrom, ck.state, fresh);
  o.engine.loadAdapter(ck.adapter, o.resumeFrom);
  o.engine.loadOptimizerState(ck.optimizer, ck.state.global_step);
  o.batcher.restore(ck.state.batcher);
  const { total_steps, grad_accum, schedule, lora, batch_size } = fresh;
  const state: TrainerState = { ...ck.state, total_steps, grad_accum, schedule, lora, batch_size };
  // a resume from an older checkpoint abandons the later ones: keep them, but out of the way
  const aside = await setAsideCheckpoints(o.runDir, logFiles, state.global_step);
  if (aside) o.log(`resuming at step ${state.global_step}: moved the later checkpoints to ${aside}`);
  // finishes a pruning that a crash interrupted
  await pruneCheckpoints(o.runDir, o.keepLast);
  for (const l of o.logs) await l.truncateAfter(state.global_step);
  o.log(`resumed from ${o.resumeFrom} at step ${state.global_step}/${state.total_steps}`);
  if (state.global_step >= state.total_steps) {
    o.log(`the run is already complete (${state.global_step} of ${state.total_steps} steps); nothing to train`);
  }
  return state;
}

/** Refuse to continue a checkpoint with settings that would silently change what it learned. */
function checkResumable(where: string, saved: TrainerState, current: TrainerState): void {
  const problems: string[] = [];
  if (saved.data_fingerprint !== current.data_fingerprint) {
    problems.push('it was trained on different data or data settings (dataset, block_size, packing, train_on, validation split, seed)');
  }
  // a step is batch_size x grad_accum blocks: the data position, the step count and the dropout
  // masks' micro-steps all count in it, so neither may change under a checkpoint
  for (const key of ['batch_size', 'grad_accum'] as const) {
    const before = saved[key];
    if (before !== undefined && before !== current[key]) {
      problems.push(`training.${key} was ${before}, now ${current[key]} (a step is batch_size x grad_accum blocks)`);
    }
  }
  const a = saved.lora;
  const b = current.lora;
  if (a !== undefined && b !== undefined) {
    if (a.r !== b.r) problems.push(`lora.r was ${a.r}, now ${b.r}`);
    if (a.alpha !== b.alpha) problems.push(`lora.alpha was ${a.alpha}, now ${b.alpha}`);
    if (a.use_rslora !== b.use_rslora) problems.push(`lora.use_rslora was ${a.use_rslora}, now ${b.use_rslora}`);
    if (a.modules.join() !== b.modules.join()) problems.push(`lora.target_modules selects other modules (${a.modules.length} before, ${b.modules.length} now)`);
  }
  if (problems.length > 0) {
    throw new InputError(`${where}: cannot resume this checkpoint: ${problems.join('; ')}. `
      + 'Resume with the settings it was trained with, or start over with --no-resume');
  }
}
