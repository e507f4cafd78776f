import { describe, expect, it } from 'vitest';
import { packBlocks, padBlocks, type Block } from '../../src/data/blocks.js';
import type { Example } from '../../src/data/examples.js';

const EOS = 0;
/** An example of `n` tokens (ids base+1..base+n-1, then EOS) whose first `prompt` tokens are masked out. */
function example(base: number, n: number, prompt: number): Example {
  const ids = Array.from({ length: n - 1 }, (_, i) => base + i + 1);
  ids.push(EOS);
  const mask = new Uint8Array(n).fill(1).fill(0, 0, prompt);
  return { ids, mask };
}

const examples = [example(100, 7, 3), example(200, 12, 5), example(300, 4, 1), example(400, 9, 9)];
const stream = examples.flatMap((e) => e.ids);
const streamMask = examples.flatMap((e) => [...e.mask]);

/** target[t] is the token after input[t]: input[t + 1] wherever the target is real text. */
function check(b: Block): void {
  const real = b.input.length - b.padding;
  for (let t = 0; t < real && t + 1 < b.input.length; t++) expect(b.input[t + 1]).toBe(b.target[t]);
  expect(b.weight.subarray(real).every((w) => w === 0)).toBe(true);
  expect(b.targets).toBe(b.weight.reduce((s, w) => s + w, 0));
}

describe('packing', () => {
  for (const blockSize of [1, 5, 8, 31, 32, 100]) {
    it(`blockSize ${blockSize}: full blocks, windows overlap by one, nothing lost or repeated`, () => {
      const blocks = packBlocks(examples, blockSize, EOS);
      expect(blocks).toHaveLength(Math.ceil((stream.length - 1) / blockSize));
      const inputs: number[] = [];
      const targets: number[] = [];
      const weights: number[] = [];
      for (const b of blocks) {
        expect(b.input).toHaveLength(blockSize);
        expect(b.target).toHaveLength(blockSize);
        expect(b.weight).toHaveLength(blockSize);
        check(b);
        inputs.push(...b.input);
        targets.push(...b.target);
        weights.push(...b.weight);
      }
      // remainder rule: only the last block is padded (pad id, weight 0)
      const pad = blocks.length * blockSize - (stream.length - 1);
      expect(blocks.at(-1)!.padding).toBe(pad);
      expect(blocks.slice(0, -1).every((b) => b.padding === 0)).toBe(true);
      expect(inputs.slice(0, stream.length - 1)).toEqual(stream.slice(0, -1));
      expect(targets.slice(0, stream.length - 1)).toEqual(stream.slice(1));
      expect(weights.slice(0, stream.length - 1)).toEqual(streamMask.slice(1));
      expect(targets.slice(stream.length - 1)).toEqual(new Array(pad).fill(EOS));
      expect(weights.slice(stream.length - 1)).toEqual(new Array(pad).fill(0));
      expect(blocks.reduce((s, b) => s + b.targets, 0)).toBe(streamMask.slice(1).reduce((s, w) => s + w, 0));
    });
  }

  it('keeps EOS between examples', () => {
    const [b] = packBlocks(examples.slice(0, 2), 64, EOS);
    expect([...b!.input.subarray(0, 8)]).toEqual([101, 102, 103, 104, 105, 106, EOS, 201]);
  });

  it('gives no block for an empty or one-token stream', () => {
    expect(packBlocks([], 4, EOS)).toEqual([]);
    expect(packBlocks([{ ids: [EOS], mask: new Uint8Array([1]) }], 4, EOS)).toEqual([]);
  });
});

describe('one padded example per block', () => {
  it('pads after EOS with weight 0 and truncates to blockSize + 1 tokens', () => {
    const blocks = padBlocks(examples, 8, EOS);
    expect(blocks).toHaveLength(4);
    const [short, long, , allPrompt] = blocks;
    expect([...short!.input]).toEqual([101, 102, 103, 104, 105, 106, EOS, EOS]);
    expect([...short!.target]).toEqual([102, 103, 104, 105, 106, EOS, EOS, EOS]);
    expect([...short!.weight]).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
    expect(short!.padding).toBe(2);
    expect(short!.targets).toBe(4);
    expect([...long!.input]).toEqual([201, 202, 203, 204, 205, 206, 207, 208]);
    expect([...long!.target]).toEqual([202, 203, 204, 205, 206, 207, 208, 209]);
    expect([...long!.weight]).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(long!.padding).toBe(0);
    expect(allPrompt!.targets).toBe(0);
    blocks.forEach(check);
  });
});
