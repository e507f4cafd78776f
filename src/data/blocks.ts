import type { Example } from './examples.js';

/**
 * A self-contained training block of `blockSize` positions. The model reads `input` and at each
 * position t predicts `target[t]`, the token that follows `input[t]` in the text; `weight[t]` is 1
 * when that prediction counts in the loss, 0 for masked prompt tokens and padding.
 * A block therefore spans blockSize + 1 tokens of text: input[t + 1] === target[t].
 */
export interface Block {
  input: Int32Array;
  target: Int32Array;
  weight: Uint8Array;
  /** number of positions with weight 1 */
  targets: number;
  /** positions whose target is padding (past the end of the text) */
  padding: number;
}

/**
 * Packing ("group_texts"): the examples (each already ending in EOS, so EOS separates them) are
 * concatenated into one stream, and block b takes the stream's tokens [b*blockSize, (b+1)*blockSize]:
 * consecutive windows overlap by one token, so every token after the first is a target exactly once.
 * Remainder rule: the last block is padded with `padId` (weight 0) rather than dropped, so no target
 * is lost. An empty stream or a single token gives no blocks.
 */
export function packBlocks(examples: readonly Example[], blockSize: number, padId: number): Block[] {
  let n = 0;
  for (const e of examples) n += e.ids.length;
  const ids = new Int32Array(n);
  const mask = new Uint8Array(n);
  let at = 0;
  for (const e of examples) {
    ids.set(e.ids, at);
    mask.set(e.mask, at);
    at += e.ids.length;
  }
  const blocks: Block[] = [];
  for (let start = 0; start + 1 < n; start += blockSize) {
    blocks.push(windowBlock(ids, mask, start, blockSize, padId));
  }
  return blocks;
}

/**
 * One example per block: an example longer than blockSize + 1 tokens is truncated to its first
 * blockSize + 1 tokens; a shorter one is padded with `padId` after its EOS, the padding weighted 0.
 * The example's first token is input only (nothing before it in the block predicts it).
 */
export function padBlocks(examples: readonly Example[], blockSize: number, padId: number): Block[] {
  return examples.map((e) => windowBlock(Int32Array.from(e.ids), e.mask, 0, blockSize, padId));
}

/** Tokens that fit in one block window: blockSize inputs plus the last target. */
export function blockWindow(blockSize: number): number {
  return blockSize + 1;
}

function windowBlock(ids: Int32Array, mask: Uint8Array, start: number, blockSize: number, padId: number): Block {
  const end = Math.min(ids.length, start + blockSize + 1);
  const inputs = Math.min(blockSize, end - start);
  const targets = end - start - 1;
  const input = new Int32Array(blockSize).fill(padId);
  const target = new Int32Array(blockSize).fill(padId);
  const weight = new Uint8Array(blockSize);
  input.set(ids.subarray(start, start + inputs));
  target.set(ids.subarray(start + 1, end));
  weight.set(mask.subarray(start + 1, end));
  let counted = 0;
  for (let t = 0; t < targets; t++) counted += weight[t]!;
  return { input, target, weight, targets: counted, padding: blockSize - targets };
}
