import { describe, expect, it } from 'vitest';
import { Batcher, type Batch } from '../../src/data/batcher.js';
import type { Block } from '../../src/data/blocks.js';

/** Block i holds the value i everywhere, so a batch shows which blocks it took. */
function blocks(n: number, size = 3): Block[] {
  return Array.from({ length: n }, (_, i) => ({
    input: new Int32Array(size).fill(i),
    target: new Int32Array(size).fill(i),
    weight: new Uint8Array(size).fill(1),
    targets: size,
    padding: 0,
  }));
}

const ids = (b: Batch): number[] => Array.from(b.input.filter((_, k) => k % 3 === 0));

function take(batcher: Batcher, k: number): number[][] {
  return Array.from({ length: k }, () => ids(batcher.next()));
}

describe('Batcher', () => {
  const data = blocks(10);

  it('visits every block once per epoch, in a new order each epoch', () => {
    const b = new Batcher(data, { batchSize: 4, seed: 7 });
    expect(b.batchesPerEpoch).toBe(3);
    const epoch0 = take(b, 3);
    const epoch1 = take(b, 3);
    expect(epoch0.map((x) => x.length)).toEqual([4, 4, 2]);
    expect(epoch0.flat().sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(epoch1.flat().sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(epoch1.flat()).not.toEqual(epoch0.flat());
    expect(b.state()).toEqual({ epoch: 2, index: 0 });
  });

  it('lays a batch out row-major and sums its targets', () => {
    const batch = new Batcher(data, { batchSize: 2, seed: 1, shuffle: false }).next();
    expect([...batch.input]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(batch.targets).toBe(6);
    expect({ epoch: batch.epoch, index: batch.index }).toEqual({ epoch: 0, index: 0 });
  });

  it('dropLast leaves out the short last batch', () => {
    const b = new Batcher(data, { batchSize: 4, seed: 7, dropLast: true });
    expect(b.batchesPerEpoch).toBe(2);
    expect(take(b, 2).every((x) => x.length === 4)).toBe(true);
    expect(b.state()).toEqual({ epoch: 1, index: 0 });
  });

  it('is the same for the same seed and differs across seeds', () => {
    expect(take(new Batcher(data, { batchSize: 3, seed: 5 }), 8)).toEqual(take(new Batcher(data, { batchSize: 3, seed: 5 }), 8));
    expect(take(new Batcher(data, { batchSize: 3, seed: 5 }), 8)).not.toEqual(take(new Batcher(data, { batchSize: 3, seed: 6 }), 8));
  });

  it('resumes exactly from a saved state, mid-epoch and across epochs', () => {
    for (const k of [0, 1, 2, 3, 4, 5, 9]) {
      const straight = new Batcher(data, { batchSize: 3, seed: 11 });
      take(straight, k);
      const saved = JSON.parse(JSON.stringify(straight.state())) as { epoch: number; index: number };
      const rest = take(straight, 10);
      const resumed = new Batcher(data, { batchSize: 3, seed: 11 }, saved);
      expect(take(resumed, 10), `after ${k} batches`).toEqual(rest);
    }
  });

  it('accepts the end of an epoch as the start of the next and rejects states that do not fit', () => {
    const b = new Batcher(data, { batchSize: 4, seed: 2 }, { epoch: 0, index: 3 });
    expect(b.state()).toEqual({ epoch: 1, index: 0 });
    expect(() => new Batcher(data, { batchSize: 4, seed: 2 }, { epoch: 0, index: 4 })).toThrow(/does not fit 3 batches/);
    expect(() => new Batcher(data, { batchSize: 4, seed: 2 }, { epoch: -1, index: 0 })).toThrow(RangeError);
    expect(() => new Batcher(blocks(3), { batchSize: 4, seed: 2, dropLast: true })).toThrow(/make no batch/);
  });
});

describe('Batcher.nextWithinEpoch', () => {
  it('takes up to max batches but stops at the end of the epoch', () => {
    const b = new Batcher(blocks(10), { batchSize: 2, seed: 3 });
    expect(b.nextWithinEpoch(3).length).toBe(3);
    expect(b.epochsDone()).toBeCloseTo(0.6, 12);
    expect(b.nextWithinEpoch(3).length).toBe(2);
    expect(b.state()).toEqual({ epoch: 1, index: 0 });
    expect(b.epochsDone()).toBe(1);
  });
});
