import { Rng } from '../random/rng.js';

export interface SamplingOptions {
  /** 0 means greedy */
  readonly temperature: number;
  /** nucleus mass in (0, 1]; 1 disables */
  readonly topP: number;
}

/** Pick the next token id from one row of logits. */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  if (opts.temperature <= 0) return argmax(logits);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp((logits[i]! - max) / opts.temperature);
    probs[i] = p;
    sum += p;
  }
  if (opts.topP >= 1) {
    let r = rng.next() * sum;
    for (let i = 0; i < n; i++) {
      r -= probs[i]!;
      if (r < 0) return i;
    }
    return n - 1;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]!);
  const candidates: number[] = [];
  let mass = 0;
  for (const i of order) {
    candidates.push(i);
    mass += probs[i]! / sum;
    if (mass >= opts.topP) break;
  }
  let total = 0;
  for (const i of candidates) total += probs[i]!;
  let r = rng.next() * total;
  for (const i of candidates) {
    r -= probs[i]!;
    if (r < 0) return i;
  }
  return candidates[candidates.length - 1]!;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
