import { Rng as SeededRng } from '../../src/random/rng.js';

/** ditty's seeded PRNG with the draws the fuzzer needs, so every case can be rebuilt from (seed, index). */
export class Rng extends SeededRng {
  /** An integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  bool(p = 0.5): boolean { return this.next() < p; }
}

/** A seed for case `i` of a run seeded with `seed`. */
export function caseSeed(seed: number, kind: string, i: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const c of `${kind}:${i}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}
