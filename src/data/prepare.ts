import { DATA_DEFAULTS, defaultTrainOn, TRAINING_DEFAULTS } from '../config/schema.js';
import { InputError } from '../io/errors.js';
import { Rng } from '../random/rng.js';
import { packBlocks, padBlocks, blockWindow, type Block } from './blocks.js';
import { tokenizeExample, type Encoder, type Example, type TrainOn } from './examples.js';
import { loadRows, skippedRowsWarning, type OnBadRow, type Row } from './rows.js';
import { shuffleInPlace, splitValidation } from './shuffle.js';
import { resolveDatasetFile, type DatasetLocation } from './source.js';
import { blockTotals, summarizeLengths, type DataStats } from './stats.js';
import { templateFor, type DataFormat } from './templates.js';

/** The data section of the config (config/schema.ts) in camelCase; what is left out takes the schema's default. */
export interface DataOptions extends DatasetLocation {
  format?: DataFormat;
  /** the field of format 'text' */
  textField?: string;
  /** positions per block (the model's context length in training) */
  blockSize: number;
  /** true: pack examples into blocks; false: one padded (or truncated) example per block */
  packing?: boolean;
  /** unset: the schema's rule for the format (defaultTrainOn) */
  trainOn?: TrainOn;
  /** share of rows held out for validation, in [0, 1) */
  validationFraction?: number;
  /** use only the first maxRows good rows of the file */
  maxRows?: number;
  onBadRow?: OnBadRow;
  /** seed of the row shuffle (training.seed) */
  seed?: number;
  /** shuffle rows before the split and packing */
  shuffle?: boolean;
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
 * Rows -> (shuffle with Rng(seed)) -> validation split (last rows) -> template -> tokens -> blocks.
 * Train and validation are packed separately, so no block mixes them.
 */
export async function prepareDataset(options: DataOptions, tokenizer: Encoder): Promise<PreparedDataset> {
  checkOptions(options);
  const format = options.format ?? DATA_DEFAULTS.format;
  const template = templateFor(format, options.textField ?? DATA_DEFAULTS.text_field);
  const resolved = await resolveDatasetFile(options);
  const onBadRow = options.onBadRow ?? DATA_DEFAULTS.on_bad_row;
  const loaded = await loadRows(resolved.path, { fields: template.fields, onBadRow, maxRows: options.maxRows });
  if (loaded.rows.length === 0) {
    const skipped = skippedRowsWarning(loaded);
    const why = skipped !== undefined ? `: ${skipped}` : ' (the file holds no rows)';
    throw new InputError(`${resolved.path}: no usable rows${why}`);
  }

  const rows = [...loaded.rows];
  if (options.shuffle ?? DATA_DEFAULTS.shuffle) shuffleInPlace(rows, new Rng(options.seed ?? TRAINING_DEFAULTS.seed));
  const split = splitValidation(rows, options.validationFraction ?? DATA_DEFAULTS.validation_fraction);

  const trainOn = options.trainOn ?? defaultTrainOn(format);
  const packing = options.packing ?? DATA_DEFAULTS.packing;
  const padId = tokenizer.eosId;
  const toExamples = (part: Row[]): Example[] => part.map((row) => tokenizeExample(tokenizer, template.render(row), trainOn));
  const trainExamples = toExamples(split.train);
  const validationExamples = toExamples(split.validation);
  const toBlocks = (examples: Example[]): Block[] =>
    packing ? packBlocks(examples, options.blockSize, padId) : padBlocks(examples, options.blockSize, padId);
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
    longExamples: lengths.filter((x) => x > blockWindow(options.blockSize)).length,
    trainBlocks: train.length,
    validationBlocks: validation.length,
    emptyBlocksDropped: allTrain.length - train.length + allValidation.length - validation.length,
    trainTargets: trainTotals.targets,
    validationTargets: validationTotals.targets,
    paddingFraction: positions === 0 ? 0 : (trainTotals.padding + validationTotals.padding) / positions,
    blockSize: options.blockSize,
    packing,
    trainOn,
  };
  const warning = skippedRowsWarning(loaded);
  return { train, validation, stats, source: resolved.description, warnings: warning ? [warning] : [], padId };
}

function checkOptions(o: DataOptions): void {
  if (!Number.isInteger(o.blockSize) || o.blockSize < 1) throw new InputError(`blockSize must be a positive integer, got ${o.blockSize}`);
  const f = o.validationFraction ?? DATA_DEFAULTS.validation_fraction;
  if (!(f >= 0 && f < 1)) throw new InputError(`validationFraction must be in [0, 1), got ${f}`);
  if (o.maxRows !== undefined && (!Number.isInteger(o.maxRows) || o.maxRows < 1)) {
    throw new InputError(`maxRows must be a positive integer, got ${o.maxRows}`);
  }
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new InputError(`seed must be an integer, got ${o.seed}`);
}
