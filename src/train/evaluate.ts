import { assemble, type Block } from '../data/index.js';
import type { LossEngine } from '../engine/engine.js';
import { microBatchOf } from './micro-batch.js';

/** Weighted mean next-token loss over blocks, without gradients or dropout; trailing padding is cut as in training. */
export function evaluateLoss(engine: LossEngine, blocks: readonly Block[], batchSize: number): number | undefined {
  if (blocks.length === 0) return undefined;
  let sum = 0;
  let count = 0;
  const blockSize = blocks[0]!.input.length;
  for (let i = 0; i < blocks.length; i += batchSize) {
    const batch = assemble(blocks.slice(i, i + batchSize));
    sum += engine.lossSum(microBatchOf(batch, blockSize));
    count += batch.targets;
  }
  return count > 0 ? sum / count : undefined;
}
