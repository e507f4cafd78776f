/**
 * Throughput of the native products on the RWKV-169M / Pythia-160M shapes (C 768, FFN 3072, T 512,
 * vocab 50277), own kernel and OpenBLAS interleaved in one run (best of --reps), 1 and 2 threads:
 *   npm run build:native && npx vite-node scripts/bench-gemm.ts [--reps 7] [--only gemm,nf4,lora,head] [--threads 1,2]
 * (DITTY_NATIVE_ADDON=<path> for a development build). GFLOP/s "cpu" divides by the process CPU
 * time, which stays meaningful on a machine shared with other jobs; "wall" by elapsed time.
 */
import { loadAddon, type NativeAddon, type Nf4Handles } from '../src/engine/native/addon.js';
import { uniformValues } from '../src/random/rng.js';

const load = loadAddon();
if (!load.addon) {
  console.error(load.reason);
  process.exit(1);
}
const a: NativeAddon = load.addon;
const repsArg = process.argv.indexOf('--reps');
const reps = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 7;
const option = (name: string, fallback: string): string[] => {
  const i = process.argv.indexOf(name);
  return (i > 0 ? process.argv[i + 1]! : fallback).split(',');
};
const only = new Set(option('--only', 'gemm,nf4,lora,head'));
const threadCounts = option('--threads', '1,2').map(Number);

function f32(n: number, seed: number, scale = 1): number {
  const id = a.alloc(0, n);
  a.write(id, uniformValues(n, -scale, scale, seed), 0);
  return id;
}

/** Best wall and CPU seconds of fn over reps runs for each variant, the variants interleaved. */
function measure(variants: Record<string, () => void>): Record<string, { wall: number; cpu: number }> {
  const best: Record<string, { wall: number; cpu: number }> = {};
  for (const k of Object.keys(variants)) best[k] = { wall: Infinity, cpu: Infinity };
  for (let r = 0; r < reps; r++) {
    for (const [k, fn] of Object.entries(variants)) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      fn();
      const wall = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1e6;
      best[k]!.wall = Math.min(best[k]!.wall, wall);
      best[k]!.cpu = Math.min(best[k]!.cpu, cpu);
    }
  }
  return best;
}

const withBlas = (lib: string, fn: () => void) => (): void => {
  process.env.DITTY_BLAS = lib;
  try {
    fn();
  } finally {
    delete process.env.DITTY_BLAS;
  }
};

const T = 512;
const C = 768;
const F = 3072;
const V = 50277;
const rows: string[] = [];
const report = (name: string, flop: number, r: Record<string, { wall: number; cpu: number }>, threads: number): void => {
  const parts = Object.entries(r).map(([k, t]) => `${k} ${(flop / t.wall / 1e9).toFixed(1)} wall / ${(flop / t.cpu / 1e9 * threads).toFixed(1)} cpu`);
  rows.push(`${name.padEnd(44)} threads ${threads}: ${parts.join(' | ')}`);
};

console.log(`${a.buildInfo().cpu}, simd ${a.buildInfo().simd}, reps ${reps}; GFLOP/s (cpu: per busy thread x threads)`);
for (const threads of threadCounts) {
  a.setThreads(threads);
  // plain GEMMs: x W^T (NT) and dy W (NN)
  if (only.has('gemm')) for (const [ta, tb, M, N, K, label] of [
    [false, true, T, F, C, 'x W^T   [512x768]x[768x3072]'], [false, false, T, C, F, 'dy W    [512x3072]x[3072x768]'],
    [false, true, T, C, C, 'x W^T   [512x768]x[768x768]'], [false, false, T, C, C, 'dy W    [512x768]x[768x768]'],
  ] as const) {
    const A = f32(M * K, 1);
    const B = f32(K * N, 2);
    const Cb = a.alloc(0, M * N);
    const run = (): void => a.gemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, Cb, N);
    report(`gemm ${label}`, 2 * M * N * K, measure({ own: withBlas('none', run), openblas: withBlas('libopenblas.so.0', run) }), threads);
    for (const id of [A, B, Cb]) a.free(id);
  }
  // NF4 linears (double quant) against the dense linear on the same weight
  if (only.has('nf4')) for (const [out, inp] of [[F, C], [C, F]] as const) {
    const w = f32(out * inp, 3, 0.05);
    const blocks = Math.ceil((out * inp) / 64);
    const h: Nf4Handles = {
      packed: a.alloc(2, (out * inp) / 2), rows: out, cols: inp, blocksize: 64, absmax: -1, absmaxQ: a.alloc(2, blocks),
      nestedAbsmax: a.alloc(0, Math.ceil(blocks / 256)), nestedMap: a.alloc(0, 256), offset: 0, nestedBlocksize: 256,
    };
    const q0 = performance.now();
    const offset = a.nf4Quantize(w, out * inp, 64, true, 256, h.packed, -1, h.absmaxQ, h.nestedAbsmax);
    const qt = (performance.now() - q0) / 1000;
    const hw: Nf4Handles = { ...h, offset };
    // the dynamic map is not needed for timing; any 256 values dequantize at the same speed
    a.write(hw.nestedMap, uniformValues(256, -1, 1, 5), 0);
    const x = f32(T * inp, 6);
    const y = a.alloc(0, T * out);
    const dy = f32(T * out, 7);
    const dx = a.alloc(0, T * inp);
    const flop = 2 * T * out * inp;
    report(`nf4 forward [${out}x${inp}]`, flop, measure({
      nf4: () => a.nf4LinearForward(hw, -1, x, T, y, false), dense: withBlas('none', () => a.denseLinearForward(w, -1, out, inp, x, T, y, false)),
    }), threads);
    report(`nf4 input grad [${out}x${inp}]`, flop, measure({
      nf4: () => a.nf4LinearInputGrad(hw, dy, T, dx, false), dense: withBlas('none', () => a.denseLinearInputGrad(w, out, inp, dy, T, dx, false)),
    }), threads);
    rows.push(`nf4 quantize [${out}x${inp}] threads ${threads}: ${((out * inp) / qt / 1e6).toFixed(0)}M values/s`);
    for (const id of [w, h.packed, h.absmaxQ, h.nestedAbsmax, h.nestedMap, x, y, dy, dx]) a.free(id);
  }
  // LoRA r 8 on a 768 -> 3072 linear, p 0.05
  if (only.has('lora')) {
    const r = 8;
    const ids = { x: f32(T * C, 8), A: f32(r * C, 9), B: f32(F * r, 10), h: a.alloc(0, T * r), y: a.alloc(0, T * F), dy: f32(T * F, 11), dA: a.alloc(0, r * C), dB: a.alloc(0, F * r), dx: a.alloc(0, T * C) };
    const flop = 2 * T * r * (C + F);
    report('lora forward r8 [768->3072] p 0.05', flop, measure({ own: () => a.loraForward(ids.x, T, C, F, r, ids.A, ids.B, 2, 0.05, 1, ids.h, ids.y) }), threads);
    report('lora backward r8 [768->3072] p 0.05', 2 * flop, measure({ own: () => a.loraBackward(ids.x, ids.h, ids.dy, T, C, F, r, ids.A, ids.B, 2, 0.05, 1, ids.dA, ids.dB, ids.dx) }), threads);
    for (const id of Object.values(ids)) a.free(id);
  }
  // head + cross-entropy with the gradient, 512 rows, chunk 128
  if (only.has('head')) {
    const hidden = f32(T * C, 12);
    const head = f32(V * C, 13, 0.05);
    const t = a.alloc(3, T);
    a.write(t, Int32Array.from(uniformValues(T, 0, V - 1, 14), Math.floor), 0);
    const w = a.alloc(0, T);
    a.fill(w, 1);
    const dh = a.alloc(0, T * C);
    report('head CE fwd+bwd [512x768]x[768x50277]', 4 * T * C * V, measure({ own: () => a.headCrossEntropy(hidden, T, C, head, V, t, w, 1 / T, dh, false, 128) }), threads);
    for (const id of [hidden, head, t, w, dh]) a.free(id);
  }
}
console.log(rows.join('\n'));
