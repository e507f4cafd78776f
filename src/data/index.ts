export { assemble, Batcher, type Batch, type BatcherOptions, type BatcherState } from './batcher.js';
export { blockWindow, packBlocks, padBlocks, type Block } from './blocks.js';
export { tokenizeExample, type Encoder, type Example, type TrainOn } from './examples.js';
export { prepareDataset, type DataOptions, type PreparedDataset } from './prepare.js';
export { loadRows, skippedRowsWarning, type BadRow, type FieldSpec, type LoadedRows, type LoadRowsOptions, type OnBadRow, type Row } from './rows.js';
export { shuffled, shuffleInPlace, splitValidation, validationCount } from './shuffle.js';
export { DEFAULT_DATASET_FILES, resolveDatasetFile, type DatasetLocation, type ResolvedDataset } from './source.js';
export { formatDataStats, summarizeLengths, type DataStats } from './stats.js';
export {
  dollyCompletion,
  dollyPrompt,
  dollyTemplate,
  templateFor,
  textTemplate,
  DOLLY_INTRO,
  END_KEY,
  INPUT_KEY,
  INSTRUCTION_KEY,
  RESPONSE_KEY,
  type DataFormat,
  type PromptParts,
  type Template,
} from './templates.js';
