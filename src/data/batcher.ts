import { DATA_DEFAULTS } from '../config/schema.js';
import { Rng } from '../random/rng.js';
import type { Block } from './blocks.js';
import { shuffleInPlace } from './shuffle.js';

/** Where a Batcher is: the next batch it yields is batch `index` of epoch `epoch` (both from 0). */
export interface BatcherState {
  epoch: number;
  index: number;
}

export interface BatcherOptions {
  batchSize: number;
  /** block order of epoch e is a Fisher–Yates shuffle with Rng(seed + e) */
  seed: number;
  /** false keeps the blocks' order in every epoch; unset: the config's default (data.shuffle) */
  shuffle?: boolean;
  /** default false: the last batch of an epoch may hold fewer blocks; true leaves those blocks out */
  dropLast?: boolean;
}

/** `blocks.length` blocks laid out row-major: input[b * blockSize + t] is input[t] of blocks[b]. */
export interface Batch {
  epoch: number;
  index: number;
  blocks: readonly Block[];
  input: Int32Array;
  target: Int32Array;
  weight: Uint8Array;
  /** loss positions in the batch (sum of the blocks' targets) */
  targets: number;
}

/** Batches of blocks over endless epochs, with a position that can be saved and restored exactly. */
export class Batcher {
  readonly batchesPerEpoch: number;
  private position: BatcherState = { epoch: 0, index: 0 };
  private order: { epoch: number; blocks: Uint32Array } | undefined;

  constructor(private readonly blocks: readonly Block[], private readonly options: BatcherOptions, state?: BatcherState) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    this.batchesPerEpoch = options.dropLast ? Math.floor(blocks.length / batchSize) : Math.ceil(blocks.length / batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(`${blocks.length} blocks make no batch of ${batchSize}${options.dropLast ? ' (dropLast)' : ''}`);
    }
    if (state) this.restore(state);
  }

  /** The position of the next batch; save it with a checkpoint. */
  state(): BatcherState {
    return { ...this.position };
  }

  restore(state: BatcherState): void {
    const { epoch, index } = state;
    if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(index) || index < 0 || index > this.batchesPerEpoch) {
      throw new RangeError(`batcher state ${JSON.stringify(state)} does not fit ${this.batchesPerEpoch} batches per epoch`);
    }
    // index === batchesPerEpoch (saved right after an epoch's last batch) means the start of the next epoch
    this.position = index === this.batchesPerEpoch ? { epoch: epoch + 1, index: 0 } : { epoch, index };
  }

  /** Block indices in the order epoch `epoch` visits them. */
  epochOrder(epoch: number): Uint32Array {
    if (this.order?.epoch !== epoch) {
      const indices = Array.from(this.blocks, (_, i) => i);
      if (this.options.shuffle ?? DATA_DEFAULTS.shuffle) shuffleInPlace(indices, new Rng(this.options.seed + epoch));
      this.order = { epoch, blocks: Uint32Array.from(indices) };
    }
    return this.order.blocks;
  }

  /** The batch at the current position; advances to the next one (into the next epoch after the last). */
  next(): Batch {
    const { epoch, index } = this.position;
    const { batchSize } = this.options;
    const picked = this.epochOrder(epoch).subarray(index * batchSize, (index + 1) * batchSize);
    const batch = assemble(Array.from(picked, (i) => this.blocks[i]!), epoch, index);
    this.position = index + 1 === this.batchesPerEpoch ? { epoch: epoch + 1, index: 0 } : { epoch, index: index + 1 };
    return batch;
  }

  /**
   * The next `max` batches, or the batches left in the current epoch when fewer: one optimizer step's
   * micro-batches, so that a step never crosses an epoch boundary.
   */
  nextWithinEpoch(max: number): Batch[] {
    const count = Math.min(max, this.batchesPerEpoch - this.position.index);
    return Array.from({ length: count }, () => this.next());
  }

  /** Epochs done, fractional: the position of the next batch in epochs. */
  epochsDone(): number {
    return this.position.epoch + this.position.index / this.batchesPerEpoch;
  }
}

/** Blocks laid out as one batch (row-major), as the Batcher yields them; `epoch`/`index` label it. */
export function assemble(blocks: readonly Block[], epoch = 0, index = 0): Batch {
  const size = blocks[0]!.input.length;
  const input = new Int32Array(blocks.length * size);
  const target = new Int32Array(blocks.length * size);
  const weight = new Uint8Array(blocks.length * size);
  let targets = 0;
  blocks.forEach((b, i) => {
    input.set(b.input, i * size);
    target.set(b.target, i * size);
    weight.set(b.weight, i * size);
    targets += b.targets;
  });
  return { epoch, index, blocks, input, target, weight, targets };
}
