/**
 * ditty's one pseudo-random generator, mulberry32, for everything seeded: LoRA initialisation,
 * dropout masks, shuffling, the validation split, sampling and random bench weights. The native
 * engine reproduces mulberry32, mixSeed and hashString bit for bit (native/cpu), so their outputs
 * must never change.
 */

/** A seeded mulberry32 stream whose 32-bit state can be saved and restored. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** uniform in [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  getState(): number {
    return this.state;
  }

  setState(state: number): void {
    this.state = state >>> 0;
  }
}

/** Mixes 32-bit words into one seed (murmur3 finalizer on a running hash). */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** FNV-1a hash of a string's UTF-16 code units. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The stream of an Rng seeded with `seed`, as a function. */
export function uniformStream(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** n values uniform in [lo, hi) (float32), drawn from `seed`. */
export function uniformValues(n: number, lo: number, hi: number, seed: number): Float32Array {
  const next = uniformStream(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** An inverted-dropout mask: each value is 0 with probability p, else 1 / (1 - p). */
export function dropoutMask(n: number, p: number, seed: number): Float32Array {
  const next = uniformStream(seed);
  const keep = 1 / (1 - p);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() < p ? 0 : keep;
  return out;
}
