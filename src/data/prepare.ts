import type { TrainConfig } from '../config/schema.js';
import type { ProgressReporter } from '../hub/index.js';
import { InputError } from '../io/errors.js';
import { packBlocks, padBlocks, blockWindow, type Block } from './blocks.js';
import { tokenizeExample, type Encoder, type Example } from './examples.js';
import { loadRows, skippedRowsWarning, type Row } from './rows.js';
import { splitRows } from './shuffle.js';
import { resolveDatasetFile } from './source.js';
import { blockTotals, summarizeLengths, type DataStats } from './stats.js';
import { templateFor } from './templates.js';

/**
 * What prepareDataset reads of a training config, as the schema (config/schema.ts) parsed it, so
 * every default is applied and every value checked there: the data section, and training.seed,
 * which seeds the row shuffle.
 */
export interface DataConfig extends Pick<TrainConfig, 'data'> {
  readonly training: Pick<TrainConfig['training'], 'seed'>;
}

export interface PreparedDataset {
  train: Block[];
  validation: Block[];
  stats: DataStats;
  /** where the rows came from, for logs */
  source: string;
  /** e.g. the skipped rows, to print */
  warnings: string[];
  /** the token that fills padding (the tokenizer's EOS) */
  padId: number;
}

/**
 * Rows -> (shuffle with Rng(training.seed)) -> validation split (last rows) -> template -> tokens -> blocks.
 * Train and validation are packed separately, so no block mixes them.
 */
export async function prepareDataset(
  config: DataConfig, tokenizer: Encoder, progress?: boolean | ProgressReporter,
): Promise<PreparedDataset> {
  const d = config.data;
  const template = templateFor(d.format, d.text_field);
  const resolved = await resolveDatasetFile({ dataset: d.dataset, revision: d.revision, file: d.file, progress });
  const loaded = await loadRows(resolved.path, { fields: template.fields, onBadRow: d.on_bad_row, maxRows: d.max_rows });
  if (loaded.rows.length === 0) {
    const skipped = skippedRowsWarning(loaded);
    const why = skipped !== undefined ? `: ${skipped}` : ' (the file holds no rows)';
    throw new InputError(`${resolved.path}: no usable rows${why}`);
  }

  const split = splitRows(loaded.rows, d, config.training.seed);

  const { block_size: blockSize, packing, train_on: trainOn } = d;
  const padId = tokenizer.eosId;
  const toExamples = (part: Row[]): Example[] => part.map((row) => tokenizeExample(tokenizer, template.render(row), trainOn));
  const trainExamples = toExamples(split.train);
  const validationExamples = toExamples(split.validation);
  const toBlocks = (examples: Example[]): Block[] =>
    packing ? packBlocks(examples, blockSize, padId) : padBlocks(examples, blockSize, padId);
  const allTrain = toBlocks(trainExamples);
  const allValidation = toBlocks(validationExamples);
  const train = allTrain.filter((b) => b.targets > 0);
  const validation = allValidation.filter((b) => b.targets > 0);
  if (train.length === 0) throw new InputError(`${resolved.path}: no training block has a token that counts in the loss`);

  const lengths = [...trainExamples, ...validationExamples].map((e) => e.ids.length);
  const lengthSummary = summarizeLengths(lengths);
  const trainTotals = blockTotals(train);
  const validationTotals = blockTotals(validation);
  const positions = trainTotals.positions + validationTotals.positions;
  const stats: DataStats = {
    rowsRead: loaded.rowsRead,
    rowsSkipped: loaded.skipped.length,
    trainRows: split.train.length,
    validationRows: split.validation.length,
    examples: lengths.length,
    totalTokens: lengths.reduce((s, x) => s + x, 0),
    meanLength: lengthSummary.mean,
    medianLength: lengthSummary.median,
    maxLength: lengthSummary.max,
    longExamples: lengths.filter((x) => x > blockWindow(blockSize)).length,
    trainBlocks: train.length,
    validationBlocks: validation.length,
    emptyBlocksDropped: allTrain.length - train.length + allValidation.length - validation.length,
    trainTargets: trainTotals.targets,
    validationTargets: validationTotals.targets,
    paddingFraction: positions === 0 ? 0 : (trainTotals.padding + validationTotals.padding) / positions,
    blockSize,
    packing,
    trainOn,
  };
  const warning = skippedRowsWarning(loaded);
  return { train, validation, stats, source: resolved.description, warnings: warning ? [warning] : [], padId };
}
