/**
 * The tfjs engine's causal attention (src/engine/fused.ts, forward + gradients) at the shape
 * scripts/neox-bench.mjs times natively, for a side-by-side number:
 *   npx vite-node scripts/neox-bench-tfjs.ts [B H T d] [reps]   (backend: DITTY_TEST_BACKEND or wasm)
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendName } from '../src/engine/backend.js';
import { causalAttention } from '../src/engine/fused.js';

const args = process.argv.slice(2).map(Number);
const [B, H, T, d] = (args.length >= 4 ? args : [1, 12, 512, 64]) as [number, number, number, number];
const reps = args[4] ?? 3;
const backend = await initBackend((process.env['DITTY_TEST_BACKEND'] ?? 'wasm') as BackendName);
const q = tf.randomUniform([B, H, T, d], -1, 1, 'float32', 1) as tf.Tensor4D;
const k = tf.randomUniform([B, H, T, d], -1, 1, 'float32', 2) as tf.Tensor4D;
const v = tf.randomUniform([B, H, T, d], -1, 1, 'float32', 3) as tf.Tensor4D;
const dy = tf.randomUniform([B, H, T, d], -1, 1, 'float32', 4);
const m = new Float32Array(T * T);
for (let t = 0; t < T; t++) m.fill(-1e30, t * T + t + 1, (t + 1) * T);
const mask = tf.tensor2d(m, [T, T]);
const best = (f: () => tf.Tensor | tf.Tensor[]): number => {
  let t = Infinity;
  for (let i = 0; i < reps + 1; i++) {
    const s = performance.now();
    const out = f();
    for (const x of Array.isArray(out) ? out : [out]) x.dataSync();
    if (i > 0) t = Math.min(t, performance.now() - s);
    tf.dispose(out);
  }
  return t;
};
const fwd = best(() => causalAttention(q, k, v, mask));
const both = best(() => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
  tf.sum(tf.mul(causalAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask), dy)))([q, k, v]));
console.log(`tfjs ${backend} causalAttention B=${B} H=${H} T=${T} d=${d}: forward ${fwd.toFixed(1)} ms, forward+backward ${both.toFixed(1)} ms (best of ${reps})`);
