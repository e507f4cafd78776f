/**
 * Response-only loss of a held-out set, pooled per category (Dolly's `category` field), computed as
 * training counts it: the rows rendered with the training template, loss on the mask's targets only.
 */
import { tokenizeExample, type Encoder } from '../data/examples.js';
import { loadRows } from '../data/rows.js';
import { splitRows } from '../data/shuffle.js';
import { resolveDatasetFile } from '../data/source.js';
import { templateFor } from '../data/templates.js';
import type { TrainConfig } from '../config/schema.js';
import { InputError } from '../io/errors.js';
import type { LossEngine, TrainEngine } from '../engine/engine.js';

export const NO_CATEGORY = '(none)';

export interface EvalExample {
  readonly category: string;
  readonly ids: readonly number[];
  /** mask[i] = 1 when token i counts in the loss (predicted from the tokens before it) */
  readonly mask: Uint8Array;
}

/**
 * The rows to score, as the schema (config/schema.ts) parsed them, so every default is applied and
 * every value checked there: a run's data section (config.yaml), or one `ditty eval --dataset` parsed
 * with DataSectionSchema.
 */
export interface EvalDataConfig extends Pick<TrainConfig, 'data'> {
  /**
   * Score only the rows a run held out: its validation split, made as prepareDataset makes it
   * (data.shuffle with Rng(seed), then the last data.validation_fraction), `seed` being the run's
   * training.seed. Unset: every row.
   */
  readonly validationSplit?: Pick<TrainConfig['training'], 'seed'>;
}

/** The rows of a dataset as scored examples, in file order (of the split), each with its category. */
export async function loadEvalExamples(config: EvalDataConfig, tokenizer: Encoder): Promise<EvalExample[]> {
  const d = config.data;
  const template = templateFor(d.format, d.text_field);
  const resolved = await resolveDatasetFile({ dataset: d.dataset, revision: d.revision, file: d.file });
  const fields = { required: template.fields.required, optional: [...template.fields.optional, 'category'] };
  const loaded = await loadRows(resolved.path, { fields, onBadRow: d.on_bad_row, maxRows: d.max_rows });
  const split = config.validationSplit;
  const rows = split ? splitRows(loaded.rows, d, split.seed).validation : loaded.rows;
  if (rows.length === 0) throw new InputError(`${resolved.path}: no ${split ? 'validation ' : ''}rows to evaluate`);
  return rows.map((row) => ({
    category: row['category'] || NO_CATEGORY,
    ...tokenizeExample(tokenizer, template.render(row), d.train_on),
  }));
}

/** Summed loss of one group of examples. */
export interface PooledLoss {
  readonly examples: number;
  /** positions that count in the loss */
  readonly targets: number;
  /** summed negative log-likelihood in nats */
  readonly nll: number;
}

/** Mean loss per target token (NaN without targets). */
export function meanLoss(p: PooledLoss): number {
  return p.targets > 0 ? p.nll / p.targets : NaN;
}

/**
 * Summed loss of one window: `ids` are the tokens, weight[j] = 1 when the prediction of ids[j + 1]
 * at position j counts (the last position never does).
 */
export type WindowScorer = (ids: readonly number[], weight: Uint8Array) => number;

/** Scores windows with a training engine (native or tfjs): no gradients, no dropout. */
export function engineScorer(engine: LossEngine): WindowScorer {
  return (ids, weight) => engine.lossSum({
    rows: 1, length: ids.length, input: Int32Array.from(ids),
    target: Int32Array.from({ length: ids.length }, (_, j) => ids[j + 1] ?? 0), weight,
  });
}

/**
 * Summed loss of one example's targets. An example longer than `window` is scored in windows of
 * `window` tokens that overlap by one, so every target is predicted once (each window without the
 * context before it, as a packed block is in training).
 */
function exampleLoss(score: WindowScorer, ex: EvalExample, window: number): { nll: number; targets: number } {
  let nll = 0;
  let targets = 0;
  for (let start = 0; start < ex.ids.length - 1; start += window - 1) {
    const chunk = ex.ids.slice(start, start + window);
    const w = Uint8Array.from({ length: chunk.length }, (_, j) => (j + 1 < chunk.length ? ex.mask[start + j + 1]! : 0));
    const count = w.reduce((s, x) => s + x, 0);
    if (count === 0) continue;
    nll += score(chunk, w);
    targets += count;
  }
  return { nll, targets };
}

/** Loss pooled per category, sorted by category name. */
export function lossByCategory(score: WindowScorer, examples: readonly EvalExample[], window: number): Map<string, PooledLoss> {
  if (!Number.isInteger(window) || window < 2) throw new InputError(`the scoring window must be at least 2 tokens, got ${window}`);
  const acc = new Map<string, { examples: number; targets: number; nll: number }>();
  for (const ex of examples) {
    const { nll, targets } = exampleLoss(score, ex, window);
    const a = acc.get(ex.category) ?? { examples: 0, targets: 0, nll: 0 };
    acc.set(ex.category, { examples: a.examples + 1, targets: a.targets + targets, nll: a.nll + nll });
  }
  return new Map([...acc].sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Runs `fn` with the engine's adapters contributing nothing (every LoRA B zeroed, so each adapted
 * linear computes its base output exactly), then puts the trained weights back.
 */
export function withZeroedAdapters<T>(engine: TrainEngine, fn: () => T): T {
  const saved = engine.adapterTensors();
  const isB = (name: string): boolean => name.endsWith('.lora_B.weight');
  engine.loadAdapter(new Map(saved.map((w) => [w.name, isB(w.name) ? new Float32Array(w.values.length) : w.values])), 'the base model (LoRA B zeroed)');
  try {
    return fn();
  } finally {
    engine.loadAdapter(new Map(saved.map((w) => [w.name, w.values])), 'the trained adapter');
  }
}
