import { Rng } from '../random/rng.js';

export interface SamplingOptions {
  /** 0 means greedy */
  readonly temperature: number;
  /** nucleus mass in (0, 1]; 1 disables */
  readonly topP: number;
}

/**
 * Pick the next token id from one row of logits: softmax(logits / temperature), restricted to the
 * nucleus when topP < 1, drawn by walking the kept tokens in id order with one uniform.
 */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  if (opts.temperature <= 0) return argmax(logits);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const probs = new Float64Array(n);
  // with a nucleus, each token's bucket of -log(p / p_max), which is (max - logit) / temperature
  const bucket = opts.topP < 1 ? new Uint16Array(n) : undefined;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const z = (logits[i]! - max) / opts.temperature;
    const p = Math.exp(z);
    probs[i] = p;
    sum += p;
    if (bucket) bucket[i] = Math.min(BUCKETS - 1, Math.floor(-z * BUCKET_SCALE));
  }
  if (!bucket) {
    let r = rng.next() * sum;
    for (let i = 0; i < n; i++) {
      r -= probs[i]!;
      if (r < 0) return i;
    }
    return n - 1;
  }
  const keep = nucleus(probs, bucket, sum * opts.topP);
  let total = 0;
  for (let i = 0; i < n; i++) if (keep(i)) total += probs[i]!;
  let r = rng.next() * total;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    last = i;
    r -= probs[i]!;
    if (r < 0) return i;
  }
  return last;
}

// Buckets of -log(p / p_max) in steps of 1 / BUCKET_SCALE; the last one takes everything below
// e^-64 (~1.6e-28 of the top token), and is sorted only in the rare case that the nucleus reaches it.
const BUCKETS = 4096;
const BUCKET_SCALE = BUCKETS / 64;

/**
 * The nucleus: the smallest set of most likely tokens (ties: lower ids first) whose mass reaches
 * `mass`, as a membership test. Linear: a histogram of the probabilities finds the bucket where the
 * mass is reached, and only that bucket's tokens are sorted. `probs` are relative to the top one (<= 1).
 */
function nucleus(probs: Float64Array, bucket: Uint16Array, mass: number): (i: number) => boolean {
  const n = probs.length;
  const bucketMass = new Float64Array(BUCKETS);
  for (let i = 0; i < n; i++) bucketMass[bucket[i]!]! += probs[i]!;
  let boundary = 0;
  let above = 0;
  while (boundary < BUCKETS - 1 && above + bucketMass[boundary]! < mass) above += bucketMass[boundary++]!;
  const members: number[] = [];
  for (let i = 0; i < n; i++) if (bucket[i] === boundary) members.push(i);
  members.sort((a, b) => probs[b]! - probs[a]! || a - b);
  const inBoundary = new Set<number>();
  for (const i of members) {
    inBoundary.add(i);
    above += probs[i]!;
    if (above >= mass) break;
  }
  return (i) => bucket[i]! < boundary || (bucket[i] === boundary && inBoundary.has(i));
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
