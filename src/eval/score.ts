import type { LossEngine } from '../engine/engine.js';

export interface TextScore {
  /** mean next-token cross-entropy in nats */
  readonly loss: number;
  readonly perplexity: number;
  /** tokens in the text */
  readonly tokens: number;
  /** positions that were predicted (tokens minus one per window) */
  readonly predicted: number;
  readonly windows: number;
  readonly seconds: number;
}

/**
 * Score token ids: one forward pass when they fit in `window` tokens, else consecutive
 * non-overlapping windows (each starting without context) whose losses are pooled per token.
 */
export function scoreTokens(engine: LossEngine, ids: readonly number[], window: number): TextScore {
  if (ids.length < 2) throw new Error(`need at least 2 tokens to score a text, got ${ids.length}`);
  const started = performance.now();
  let nllSum = 0;
  let predicted = 0;
  let windows = 0;
  for (let start = 0; start < ids.length - 1; start += window) {
    const chunk = ids.slice(start, start + window);
    if (chunk.length < 2) break;
    const targets = Int32Array.from(chunk.slice(1).concat([0]));
    const weights = new Uint8Array(chunk.length).fill(1);
    weights[chunk.length - 1] = 0; // the last position has no next token
    nllSum += engine.lossSum({ rows: 1, length: chunk.length, input: Int32Array.from(chunk), target: targets, weight: weights });
    predicted += chunk.length - 1;
    windows++;
  }
  const lossMean = nllSum / predicted;
  return {
    loss: lossMean, perplexity: Math.exp(lossMean), tokens: ids.length, predicted, windows,
    seconds: (performance.now() - started) / 1000,
  };
}
