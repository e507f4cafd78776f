import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { matMul } from '../../src/engine/matmul.js';
import { useBackend } from '../helpers/backend.js';

/** op(a) op(b) in float64 from the operands' values, batched over leading axes (b may be unbatched). */
function reference(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { shape: number[]; values: Float64Array } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = ta ? [ac, ar] : [ar, ac];
  const n = tb ? br : bc;
  const batch = a.size / (ar * ac);
  const bBatched = b.rank > 2;
  const values = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = z * ar * ac;
    const bo = bBatched ? z * br * bc : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += av[ao + (ta ? p * ac + i : i * ac + p)]! * bv[bo + (tb ? j * bc + p : p * bc + j)]!;
        }
        values[(z * m + i) * n + j] = s;
      }
    }
  }
  return { shape: [...a.shape.slice(0, -2), m, n], values };
}

// Both tfjs CPU backends: wasm takes the plain-operand rewrites, js (tfjs 'cpu') the direct product.
describe.each(['wasm', 'cpu'] as const)('engine matMul on tfjs %s', (backend) => {
  beforeAll(async () => { await useBackend(backend); });

  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [7, 3], true, false],
    [[7, 5], [3, 7], true, true],
    [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
    [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
    [[2, 7, 5], [2, 7, 4], true, false],
    [[2, 5, 7], [7, 4], false, false],
    [[64, 9], [300, 9], false, true],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`[${sa}]${ta ? 'ᵀ' : ''} · [${sb}]${tb ? 'ᵀ' : ''} equals the float64 product`, () => {
      const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
      const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
      const ref = reference(a, b, ta, tb);
      const got = matMul(a, b, ta, tb);
      expect(got.shape).toEqual(ref.shape);
      const g = got.dataSync();
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - ref.values[i]!));
      expect(worst).toBeLessThan(1e-4);
    });
  }

  it('is differentiable through the registered gradients', () => {
    const a = tf.randomNormal([4, 6], 0, 1, 'float32', 3);
    const b = tf.randomNormal([5, 6], 0, 1, 'float32', 4);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matMul(x, y, false, true))))([a, b]);
    const [ra, rb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([a, b]);
    expect(tf.max(tf.abs(tf.sub(ga!, ra!))).dataSync()[0]).toBeLessThan(1e-3);
    expect(tf.max(tf.abs(tf.sub(gb!, rb!))).dataSync()[0]).toBeLessThan(1e-3);
  });
});
