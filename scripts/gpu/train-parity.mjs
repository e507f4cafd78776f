#!/usr/bin/env node
// Trains the tiny fixture models for N steps with `ditty train` on backend cuda and on backend cpu
// (the native CPU engine, fp32) and compares the per-step training losses: to 1e-4 relative when
// cuda computes in fp32 (compute_dtype fp32), to bf16 tolerance when it computes in bf16.
//   node scripts/gpu/train-parity.mjs OUT_DIR [--steps 20] [--ditty DIR] [--shared DIR]
// DIR defaults: the checkout this script is in, and ../shared beside it. Prints one JSON line per
// comparison and exits 1 when any disagrees; the runs' logs and metrics stay under OUT_DIR.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const out = path.resolve(argv[0] ?? '');
if (!argv[0] || argv[0].startsWith('--')) {
  process.stderr.write('usage: train-parity.mjs OUT_DIR [--steps N] [--ditty DIR] [--shared DIR]\n');
  process.exit(2);
}
const ditty = path.resolve(opt('--ditty', path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')));
const shared = path.resolve(opt('--shared', path.join(ditty, '..', 'shared')));
const steps = Number(opt('--steps', '20'));
// relative per-step tolerance of the cuda run against the CPU run
const TOLERANCE = { fp32: 1e-4, bf16: 3e-2 };
const MODELS = [
  { name: 'tiny-rwkv', targets: '[key, value, receptance]' },
  { name: 'tiny-neox-parallel', targets: '[query_key_value]' },
];

function config(model, backend, dtype, dir) {
  return `model:
  name_or_path: ${path.join(shared, 'fixtures', model.name)}
quantization: { bits: 4, double_quant: true, blocksize: 64 }
lora: { r: 8, alpha: 16, dropout: 0.05, target_modules: ${model.targets} }
data:
  dataset: ${path.join(shared, 'data', 'dolly-sample.jsonl')}
  format: dolly
  block_size: 64
  packing: true
  train_on: response
  validation_fraction: 0
training:
  batch_size: 2
  grad_accum: 2
  max_steps: ${steps}
  learning_rate: 3.0e-3
  lr_scheduler: constant
  seed: 42
  compute_dtype: ${dtype}
output: { dir: ${dir}, checkpoint_every: ${steps}, keep_last: 1 }
backend: ${backend}
`;
}

function train(model, backend, dtype) {
  const tag = `${model.name}-${backend}-${dtype}`;
  const dir = path.join(out, tag);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const cfg = path.join(out, `${tag}.yaml`);
  fs.writeFileSync(cfg, config(model, backend, dtype, dir));
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(ditty, 'bin', 'ditty.js'), 'train', cfg, '--no-resume'], {
    cwd: ditty, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20,
  });
  fs.writeFileSync(path.join(out, `${tag}.log`), `${r.stdout ?? ''}\n--- stderr ---\n${r.stderr ?? ''}`);
  if (r.status !== 0) {
    const last = (r.stderr ?? '').trim().split('\n').filter((l) => !l.startsWith('    at ')).pop() ?? `exit ${r.status}`;
    return { tag, error: last };
  }
  const losses = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l)).filter((m) => typeof m.loss === 'number').map((m) => m.loss);
  return { tag, losses, seconds: (Date.now() - started) / 1e3 };
}

let failed = false;
for (const model of MODELS) {
  const cpu = train(model, 'cpu', 'fp32');
  for (const dtype of ['fp32', 'bf16']) {
    const cuda = train(model, 'cuda', dtype);
    const row = { model: model.name, dtype, tolerance: TOLERANCE[dtype], cpuSeconds: cpu.seconds, cudaSeconds: cuda.seconds };
    if (cpu.error || cuda.error) {
      Object.assign(row, { ok: false, error: cpu.error ?? cuda.error });
    } else if (cpu.losses.length !== steps || cuda.losses.length !== steps) {
      Object.assign(row, { ok: false, error: `expected ${steps} losses, got cpu ${cpu.losses.length}, cuda ${cuda.losses.length}` });
    } else {
      const rel = cpu.losses.map((l, i) => Math.abs(cuda.losses[i] - l) / Math.abs(l));
      const worst = Math.max(...rel);
      Object.assign(row, { ok: worst <= TOLERANCE[dtype], maxRelativeDifference: worst,
        firstLoss: [cpu.losses[0], cuda.losses[0]], lastLoss: [cpu.losses.at(-1), cuda.losses.at(-1)] });
    }
    failed ||= !row.ok;
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
}
process.exit(failed ? 1 : 0);
