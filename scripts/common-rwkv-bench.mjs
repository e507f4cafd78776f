// Throughput of the native common + RWKV kernels (memory-bound: reported as GB/s of the bytes each
// call must read and write, and µs per call), on [rows, C] = [512, 768] and [512, 3072].
//   DITTY_NATIVE_ADDON=path/to/ditty_native.node [DITTY_SIMD=avx2|portable] [DITTY_THREADS=n] \
//     node scripts/common-rwkv-bench.mjs
// Each figure is the best of 5 batches of calls lasting ~50 ms each (the best, not the mean, because
// a shared machine only ever slows a batch down).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = process.env.DITTY_NATIVE_ADDON ?? path.join(root, 'build', 'Release', 'ditty_native.node');
const a = createRequire(import.meta.url)(file);

function buffer(n, seed) {
  const id = a.alloc(0, n);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  a.write(id, data, 0);
  return id;
}

function best(fn) {
  fn();
  let calls = 1;
  for (let t0 = performance.now(); performance.now() - t0 < 20; calls++) fn();
  const per = Math.max(1, Math.round(calls * 2.5)); // ~50 ms
  let bestUs = Infinity;
  for (let batch = 0; batch < 5; batch++) {
    const t0 = performance.now();
    for (let i = 0; i < per; i++) fn();
    bestUs = Math.min(bestUs, ((performance.now() - t0) * 1000) / per);
  }
  return bestUs;
}

const info = a.buildInfo();
console.log(`simd ${info.simd}, threads ${info.threads}, ${info.cpu}`);
for (const [rows, C] of [[512, 768], [512, 3072]]) {
  const n = rows * C;
  const [x, y, z, dy, m, v, out, out2, out3] = Array.from({ length: 9 }, (_, i) => buffer(n, i + 1));
  a.layernormForward(v, buffer(C, 29), buffer(C, 30), rows, C, 1e-5, v, out, out); // any values ...
  a.reluSquareForward(v, v, n); // ... made non-negative: AdamW's second moment
  const w = buffer(C, 20), b = buffer(C, 21), mix = [buffer(C, 22), buffer(C, 23), buffer(C, 24)];
  const mean = buffer(rows, 25), rstd = buffer(rows, 26), state = buffer(3 * C, 27);
  const ids = a.alloc(3, rows);
  a.write(ids, Int32Array.from({ length: rows }, (_, i) => (i * 7) % rows), 0);
  const table = buffer(n, 28);
  a.layernormForward(x, w, b, rows, C, 1e-5, out, mean, rstd);
  const cases = [
    ['embeddingForward', 2, () => a.embeddingForward(ids, rows, table, rows, C, out)],
    ['layernormForward', 2, () => a.layernormForward(x, w, b, rows, C, 1e-5, out, mean, rstd)],
    ['layernormBackward', 3, () => a.layernormBackward(dy, x, w, mean, rstd, rows, C, out, false)],
    ['add', 3, () => a.add(x, y, out, n)],
    ['addInplace', 3, () => a.addInplace(out, x, n)],
    ['scaleInplace', 2, () => a.scaleInplace(out, n, 0.999)],
    ['adamwStep', 7, () => a.adamwStep(z, dy, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0.01, 3)],
    ['sumSquares', 1, () => a.sumSquares(x, n)],
    ['timeMixForward x3', 4, () => a.timeMixForward(x, -1, 1, rows, C, mix, [out, out2, out3])],
    ['timeMixBackward x3', 4, () => a.timeMixBackward([x, y, z], mix, 1, rows, C, out, false)],
    ['sigmoidGateForward', 3, () => a.sigmoidGateForward(x, y, out, n)],
    ['sigmoidGateBackward', 5, () => a.sigmoidGateBackward(x, y, dy, out, out2, n)],
    ['reluSquareForward', 2, () => a.reluSquareForward(x, out, n)],
    ['reluSquareBackward', 3, () => a.reluSquareBackward(x, dy, out, n)],
    ['wkvForward (B=1, T=512)', 3, () => a.wkvForward(w, b, x, y, 1, rows, C, out, -1)],
    ['wkvForward + state', 3, () => a.wkvForward(w, b, x, y, 1, rows, C, out, state)],
    ['wkvBackward (B=1, T=512)', 5, () => a.wkvBackward(w, b, x, y, dy, 1, rows, C, out, out2)],
  ];
  console.log(`\n[${rows}, ${C}] (${((n * 4) / 2 ** 20).toFixed(1)} MiB per array)`);
  for (const [name, arrays, fn] of cases) {
    const us = best(fn);
    const gbs = (arrays * n * 4) / (us * 1e3);
    console.log(`  ${name.padEnd(26)} ${us.toFixed(1).padStart(9)} µs  ${gbs.toFixed(1).padStart(6)} GB/s`);
  }
}
