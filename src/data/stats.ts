import type { Block } from './blocks.js';
import type { TrainOn } from './examples.js';

export interface DataStats {
  rowsRead: number;
  rowsSkipped: number;
  trainRows: number;
  validationRows: number;
  /** tokenized rows (train + validation) */
  examples: number;
  /** tokens of all examples, EOS included */
  totalTokens: number;
  meanLength: number;
  medianLength: number;
  maxLength: number;
  /** examples longer than one block window (blockSize + 1 tokens): truncated when padded, split when packed */
  longExamples: number;
  trainBlocks: number;
  validationBlocks: number;
  /** blocks left out because no position in them counts in the loss */
  emptyBlocksDropped: number;
  /** loss positions in the train / validation blocks */
  trainTargets: number;
  validationTargets: number;
  /** fraction of block positions whose target is padding */
  paddingFraction: number;
  blockSize: number;
  packing: boolean;
  trainOn: TrainOn;
}

export interface LengthSummary {
  mean: number;
  median: number;
  max: number;
}

export function summarizeLengths(lengths: readonly number[]): LengthSummary {
  if (lengths.length === 0) return { mean: 0, median: 0, max: 0 };
  const sorted = [...lengths].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const total = sorted.reduce((s, x) => s + x, 0);
  return { mean: total / sorted.length, median, max: sorted[sorted.length - 1]! };
}

export function blockTotals(blocks: readonly Block[]): { targets: number; padding: number; positions: number } {
  let targets = 0;
  let padding = 0;
  let positions = 0;
  for (const b of blocks) {
    targets += b.targets;
    padding += b.padding;
    positions += b.input.length;
  }
  return { targets, padding, positions };
}

/** A few lines to print before training. */
export function formatDataStats(s: DataStats): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const mode = s.packing ? 'packed' : 'one padded example per block';
  return [
    `rows: ${n(s.rowsRead)} read, ${n(s.rowsSkipped)} skipped, ${n(s.trainRows)} train, ${n(s.validationRows)} validation`,
    `examples: ${n(s.examples)}, ${n(s.totalTokens)} tokens; length mean ${s.meanLength.toFixed(1)}, median ${s.medianLength}, max ${n(s.maxLength)}`,
    `blocks of ${n(s.blockSize)} (${mode}, loss on ${s.trainOn === 'all' ? 'all tokens' : 'responses'}): `
      + `${n(s.trainBlocks)} train, ${n(s.validationBlocks)} validation`
      + (s.emptyBlocksDropped > 0 ? `, ${n(s.emptyBlocksDropped)} without targets dropped` : ''),
    `loss tokens: ${n(s.trainTargets)} train, ${n(s.validationTargets)} validation; padding ${pct(s.paddingFraction)}; `
      + `${n(s.longExamples)} examples longer than a block${s.packing ? ' (split across blocks)' : ' (truncated)'}`,
  ].join('\n');
}
