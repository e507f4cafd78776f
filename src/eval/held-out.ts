import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTrainConfig, type TrainConfig } from '../config/index.js';
import type { Encoder } from '../data/examples.js';
import { writeBytesAtomic } from '../io/atomic.js';
import { InputError } from '../io/errors.js';
import type { TrainEngine } from '../engine/engine.js';
import { beforeAfterJson, beforeAfterRows, type BeforeAfterRow } from './before-after.js';
import { engineScorer, loadEvalExamples, lossByCategory, withZeroedAdapters, type EvalDataConfig, type EvalExample } from './category-loss.js';

export const BEFORE_AFTER_FILE = 'before-after.json';

/** The validation split of a training config's data, with the rows' categories, as the run held it out. */
export function validationSplitOf(config: TrainConfig): EvalDataConfig {
  if (!(config.data.validation_fraction > 0)) throw new InputError('data.validation_fraction is 0: the run held out no rows to evaluate');
  return { data: config.data, validationSplit: { seed: config.training.seed } };
}

/** The training config stored with an adapter (a checkpoint's config.yaml). */
export function configOfAdapter(adapterDir: string): TrainConfig {
  const file = path.join(adapterDir, 'config.yaml');
  if (!fs.existsSync(file)) throw new InputError(`${adapterDir}: no config.yaml, so the run's validation split is unknown; name the rows with --dataset`);
  return loadTrainConfig(file, []);
}

export function validationExamples(config: TrainConfig, tokenizer: Encoder): Promise<EvalExample[]> {
  return loadEvalExamples(validationSplitOf(config), tokenizer);
}

/**
 * Scores `examples` with the engine's adapters zeroed (the base model) and as trained: what the
 * trainer runs on the validation split at the end of a run.
 */
export function evaluateBeforeAfter(engine: TrainEngine, examples: readonly EvalExample[], window: number): BeforeAfterRow[] {
  const score = engineScorer(engine);
  const base = withZeroedAdapters(engine, () => lossByCategory(score, examples, window));
  return beforeAfterRows(base, lossByCategory(score, examples, window));
}

/** Records the table in the run folder, for the report and the end-of-run summary. */
export async function writeBeforeAfter(runDir: string, rows: readonly BeforeAfterRow[]): Promise<void> {
  await writeBytesAtomic(path.join(runDir, BEFORE_AFTER_FILE), `${JSON.stringify(beforeAfterJson(rows), null, 2)}\n`);
}
