import { describe, expect, it } from 'vitest';
import { dropoutMask, hashString, mixSeed, Rng, uniformStream, uniformValues } from '../../src/random/rng.js';

const words = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.next() * 4294967296);

describe('the one seeded generator (mulberry32)', () => {
  // Outputs of mulberry32 as lora/random.ts drew them before the generators were merged; the native
  // engine's twin (native/cpu/lora.cpp) reproduces these bits, so they must never change.
  it('draws mulberry32 words, bit for bit', () => {
    expect(words(new Rng(42), 3)).toEqual([2581720956, 1925393290, 3661312704]);
    expect(words(new Rng(0xffffffff), 2)).toEqual([3850105811, 813802916]);
    expect(mixSeed(1, 2, 3)).toBe(2901138804);
    expect(hashString('rwkv.blocks.0.attention.key')).toBe(1996555322);
  });

  it('uniformStream, uniformValues and dropoutMask draw from the same stream as Rng', () => {
    const next = uniformStream(7);
    const rng = new Rng(7);
    for (let i = 0; i < 5; i++) expect(next()).toBe(rng.next());
    const reference = new Rng(9);
    expect([...uniformValues(4, -1, 1, 9)]).toEqual([...new Float32Array(Array.from({ length: 4 }, () => -1 + 2 * reference.next()))]);
    const drops = new Rng(11);
    expect([...dropoutMask(6, 0.5, 11)]).toEqual(Array.from({ length: 6 }, () => (drops.next() < 0.5 ? 0 : 2)));
  });

  it('a saved state continues the stream exactly', () => {
    const rng = new Rng(123);
    words(rng, 5);
    const saved = rng.getState();
    const ahead = words(rng, 4);
    const restored = new Rng(0);
    restored.setState(saved);
    expect(words(restored, 4)).toEqual(ahead);
  });
});
