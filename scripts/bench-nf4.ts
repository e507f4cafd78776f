/**
 * NF4 quantization (double quant, blocksize 64) and dequantization throughput on one core.
 *   npm run build && node dist/scripts/bench-nf4.js [--values 10000000]
 */
import { dequantizeNf4, quantizeNf4 } from '../src/quant/nf4.js';
import { Rng } from '../src/random/rng.js';

const arg = process.argv.indexOf('--values');
const n = arg > 0 ? Number(process.argv[arg + 1]) : 10_000_000;
const rng = new Rng(3);
const values = new Float32Array(n);
for (let i = 0; i < n; i++) values[i] = (rng.next() - 0.5) * 0.04;
const best = (f: () => void): number => {
  let t = Infinity;
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    f();
    t = Math.min(t, performance.now() - s);
  }
  return t / 1000;
};
const state = quantizeNf4(values, { shape: [n], blocksize: 64, doubleQuant: true });
const q = best(() => quantizeNf4(values, { shape: [n], blocksize: 64, doubleQuant: true }));
const d = best(() => dequantizeNf4(state));
console.log(`command: node dist/scripts/bench-nf4.js --values ${n}`);
console.log(`quantize ${(n / q / 1e6).toFixed(1)}M values/s, dequantize ${(n / d / 1e6).toFixed(1)}M values/s (${n.toLocaleString('en-US')} values, best of 3)`);
