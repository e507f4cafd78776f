/**
 * The native AdamW step against src/runtime/tfjs-adamw.ts (the tfjs engine's optimizer): the same float32
 * operations in the same order, so parameters and moments agree to the bit over several steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { AdamW } from '../../src/runtime/tfjs-adamw.js';
import { addon, f32Buffer, readF32 } from '../helpers/native.js';
import { uniform } from '../helpers/random.js';
import { bufferPool, describeKernels, forEachSimdPath, ulpDiff } from './common-simd.js';

const pool = bufferPool();
const { keep } = pool;

function worstUlp(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, ulpDiff(a[i]!, b[i]!));
  return worst;
}

describeKernels('native AdamW', pool, () => {
  forEachSimdPath(() => {
    for (const [n, weightDecay] of [[1, 0], [37, 0.01], [20011, 0.1]] as const) {
      it(`equals src/runtime/tfjs-adamw.ts over 4 steps (n = ${n}, weight decay ${weightDecay})`, () => {
        const a = addon();
        const opts = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay };
        const p0 = uniform(n, -1, 1, n);
        const variable = tf.variable(tf.tensor1d(p0));
        const ref = new AdamW(new Map([['p', variable]]), opts);
        const [p, g, m, v] = [keep(f32Buffer(p0)), keep(a.alloc(0, n)), keep(a.alloc(0, n)), keep(a.alloc(0, n))];
        try {
          for (let step = 1; step <= 4; step++) {
            // gradients over several magnitudes, including exact zeros
            const grad = uniform(n, -1, 1, 100 + step).map((x, i) => (i % 7 === 3 ? 0 : x * 10 ** ((i % 5) - 3)));
            const lr = 2e-4 * step;
            const gt = tf.tensor1d(grad);
            ref.step(new Map([['p', gt]]), lr);
            gt.dispose();
            a.write(g, grad, 0);
            a.adamwStep(p, g, m, v, n, lr, opts.beta1, opts.beta2, opts.epsilon, weightDecay, step);
          }
          const slot = ref.exportState().get('p')!;
          expect(worstUlp(readF32(m, n), slot.expAvg)).toBe(0);
          expect(worstUlp(readF32(v, n), slot.expAvgSq)).toBe(0);
          expect(worstUlp(readF32(p, n), variable.dataSync() as Float32Array)).toBe(0);
        } finally {
          ref.dispose();
          variable.dispose();
        }
      });
    }
  });

  it('argument checks name the argument', () => {
    const a = addon();
    const small = keep(a.alloc(0, 5)), big = keep(a.alloc(0, 100)), ints = keep(a.alloc(3, 100));
    expect(() => a.adamwStep(big, big, big, small, 10, 1e-3, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/^v: buffer \d+ has 5 elements, the call needs 10/);
    expect(() => a.adamwStep(big, ints, big, big, 10, 1e-3, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/^g: buffer \d+ holds i32, expected f32/);
    expect(() => a.adamwStep(big, big, big, big, 10, 1e-3, 1, 0.999, 1e-8, 0, 1)).toThrow(/^beta1: expected a number in \[0/);
    expect(() => a.adamwStep(big, big, big, big, 10, 1e-3, 0.9, 0.999, 1e-8, -1, 1)).toThrow(/^weightDecay: /);
    expect(() => a.adamwStep(big, big, big, big, 10, 1e-3, 0.9, 0.999, 1e-8, 0, 0)).toThrow(/^step: expected an integer >= 1/);
    expect(() => a.adamwStep(big, big, big, big, 10, Number.NaN, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/^lr: /);
  });
});
