import type { Batch } from '../data/index.js';
import type { MicroBatch } from '../engine/engine.js';

/**
 * The batch as the model sees it, cut after the last position that counts in the loss in any row:
 * a causal model's later positions cannot change the loss, so trailing padding (one padded example
 * per block, or the last packed block) costs nothing.
 */
export function microBatchOf(batch: Batch, blockSize: number): MicroBatch {
  const rows = batch.blocks.length;
  let used = 1;
  for (let r = 0; r < rows; r++) {
    for (let t = blockSize - 1; t >= used; t--) {
      if (batch.weight[r * blockSize + t]) {
        used = t + 1;
        break;
      }
    }
  }
  if (used === blockSize) return { rows, length: blockSize, input: batch.input, target: batch.target, weight: batch.weight };
  const cut = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
    const out = make(rows * used);
    for (let r = 0; r < rows; r++) out.set(a.subarray(r * blockSize, r * blockSize + used), r * used);
    return out;
  };
  return {
    rows, length: used,
    input: cut(batch.input, (n) => new Int32Array(n)),
    target: cut(batch.target, (n) => new Int32Array(n)),
    weight: cut(batch.weight, (n) => new Uint8Array(n)),
  };
}
