import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/random/rng.js';
import { argmax, sampleToken } from '../../src/generate/sampling.js';

/** A stand-in Rng that returns the given uniforms in turn. */
function fixed(...u: number[]): Rng {
  const rng = new Rng(0);
  let i = 0;
  rng.next = () => u[i++ % u.length]!;
  return rng;
}

const logits = Float32Array.from([Math.log(0.1), Math.log(0.5), Math.log(0.15), Math.log(0.25)]); // p = .1 .5 .15 .25

describe('sampleToken', () => {
  it('is argmax at temperature 0 (the first of equal maxima)', () => {
    expect(sampleToken(logits, { temperature: 0, topP: 0.5 }, fixed(0.99))).toBe(1);
    expect(argmax(Float32Array.from([3, 7, 7, 1]))).toBe(1);
  });

  it('walks the full distribution in index order when topP is 1', () => {
    // cumulative .1 .6 .75 1.0
    expect(sampleToken(logits, { temperature: 1, topP: 1 }, fixed(0.05))).toBe(0);
    expect(sampleToken(logits, { temperature: 1, topP: 1 }, fixed(0.59))).toBe(1);
    expect(sampleToken(logits, { temperature: 1, topP: 1 }, fixed(0.61))).toBe(2);
    expect(sampleToken(logits, { temperature: 1, topP: 1 }, fixed(0.9))).toBe(3);
  });

  it('keeps the smallest set of most likely tokens whose mass reaches topP, renormalised', () => {
    // topP .7: sorted .5 (tok 1), .25 (tok 3) -> mass .75 >= .7; candidates [1, 3], total .75
    const opts = { temperature: 1, topP: 0.7 };
    expect(sampleToken(logits, opts, fixed(0.6))).toBe(1); // .6 * .75 = .45 < .5
    expect(sampleToken(logits, opts, fixed(0.7))).toBe(3); // .525 > .5
    // tokens 0 and 2 are never drawn, whatever the uniform
    const seen = new Set<number>();
    const rng = new Rng(7);
    for (let i = 0; i < 2000; i++) seen.add(sampleToken(logits, opts, rng));
    expect([...seen].sort()).toEqual([1, 3]);
  });

  it('topP below the top probability keeps only the most likely token', () => {
    expect(sampleToken(logits, { temperature: 1, topP: 0.3 }, fixed(0.999))).toBe(1);
  });

  it('temperature sharpens and flattens: frequencies follow softmax(logits / T)', () => {
    const count = (temperature: number) => {
      const rng = new Rng(123);
      const hits = [0, 0, 0, 0];
      for (let i = 0; i < 20_000; i++) hits[sampleToken(logits, { temperature, topP: 1 }, rng)]!++;
      return hits.map((h) => h / 20_000);
    };
    const expected = (t: number) => {
      const w = [0.1, 0.5, 0.15, 0.25].map((p) => p ** (1 / t));
      const s = w.reduce((a, b) => a + b, 0);
      return w.map((x) => x / s);
    };
    for (const t of [0.5, 1, 2]) {
      const got = count(t);
      expected(t).forEach((p, i) => expect(Math.abs(got[i]! - p)).toBeLessThan(0.015));
    }
  });

  it('the same seed gives the same draws', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 0.8, topP: 0.9 }, rng));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  it('the nucleus equals the one a full sort finds, on vocabulary-sized rows flat and peaked', () => {
    const rng = new Rng(11);
    const reference = (row: Float32Array, temperature: number, topP: number, u: number): number => {
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      const p = Array.from(row, (x) => Math.exp((x - max) / temperature));
      const sum = p.reduce((a, b) => a + b, 0);
      const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
      const kept = new Set<number>();
      let mass = 0;
      for (const i of order) {
        kept.add(i);
        mass += p[i]!;
        if (mass >= topP * sum) break;
      }
      const ids = [...kept].sort((a, b) => a - b);
      let r = u * ids.reduce((a, i) => a + p[i]!, 0);
      for (const i of ids) if ((r -= p[i]!) < 0) return i;
      return ids.at(-1)!;
    };
    for (const [n, spread] of [[50_277, 0.01], [50_277, 3], [50_277, 30], [1000, 0], [7, 2]] as const) {
      const row = Float32Array.from({ length: n }, () => Math.round((rng.next() - 0.5) * spread * 8) / 8);
      for (const [temperature, topP] of [[1, 0.9], [0.7, 0.5], [1.3, 0.99], [1, 0.01]] as const) {
        for (const u of [0, 0.3, 0.999]) {
          expect(sampleToken(row, { temperature, topP }, fixed(u)), `n ${n} spread ${spread} T ${temperature} p ${topP} u ${u}`)
            .toBe(reference(row, temperature, topP, u));
        }
      }
    }
  });
});
