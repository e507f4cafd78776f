// Times the native GPT-NeoX kernels at pythia-160m's attention shape (B=1, H=12, T=512, d=64):
//   DITTY_NATIVE_ADDON=path/to/ditty_native.node node scripts/neox-bench.mjs [B H T d] [reps]
// Prints the best of `reps` runs per kernel and SIMD level (DITTY_SIMD caps the level per call).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = createRequire(import.meta.url)(process.env.DITTY_NATIVE_ADDON ?? path.join(root, 'build', 'Release', 'ditty_native.node'));
const args = process.argv.slice(2).map(Number);
const [B, H, T, d] = args.length >= 4 ? args : [1, 12, 512, 64];
const reps = args[4] ?? 5;

function buffer(n, seed) {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) x[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
  const id = addon.alloc(0, n);
  addon.write(id, x, 0);
  return id;
}
// best wall time and best CPU time (all threads) in ms: on a shared machine the CPU time shows what
// the kernel costs when the wall clock also counts other processes' turns
function best(fn) {
  fn();
  let wall = Infinity, cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    wall = Math.min(wall, Number(process.hrtime.bigint() - t0) / 1e6);
    cpu = Math.min(cpu, (c.user + c.system) / 1e3);
  }
  return { wall, cpu };
}
const ms = (t) => `${t.wall.toFixed(2)} ms (cpu ${t.cpu.toFixed(2)} ms)`;

const n = B * H * T * d;
const [q, k, v, dout] = [1, 2, 3, 4].map((s) => buffer(n, s));
const [out, dq, dk, dv] = [0, 0, 0, 0].map(() => addon.alloc(0, n));
const lse = addon.alloc(0, B * H * T);
const qkv = buffer(3 * n, 5);
const g = buffer(B * T * 4 * H * d, 6), gy = addon.alloc(0, B * T * 4 * H * d);
// causal attention: 2 products of T^2/2 x d multiply-adds forward, 5 backward (+ the recomputed scores)
const flops = (products) => products * 2 * B * H * (T * (T + 1) / 2) * d;
console.log(`B=${B} H=${H} T=${T} d=${d}, ${addon.threads()} threads, ${addon.buildInfo().cpu}`);
for (const level of ['avx512', 'avx2', 'portable']) {
  process.env.DITTY_SIMD = level;
  if (addon.buildInfo().simd !== level) continue;
  const fwd = best(() => addon.attentionForward(q, k, v, B, H, T, T, d, out, lse));
  const bwd = best(() => addon.attentionBackward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv));
  const rot = best(() => addon.qkvRotaryForward(qkv, B, T, H, d, d / 4, 10000, 0, q, k, v));
  const gelu = best(() => addon.geluForward(g, gy, B * T * 4 * H * d, 0));
  const gelub = best(() => addon.geluBackward(g, g, gy, B * T * 4 * H * d, 0));
  console.log(`${level.padEnd(8)} attention forward ${ms(fwd)} ${(flops(2) / fwd.wall / 1e6).toFixed(1)} GFLOP/s, ` +
    `backward ${ms(bwd)} ${(flops(5) / bwd.wall / 1e6).toFixed(1)} GFLOP/s, fwd+bwd ${(fwd.wall + bwd.wall).toFixed(2)} ms; ` +
    `qkv rotary ${ms(rot)}; gelu erf [${B * T}, ${4 * H * d}] forward ${ms(gelu)}, backward ${ms(gelub)}`);
}
