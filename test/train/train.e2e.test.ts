import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { listCheckpoints } from '../../src/runtime/run-folder.js';
import { trainFromConfig } from '../../src/train/run.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-train-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

function metrics(dir: string): { step: number; loss: number; val_loss?: number }[] {
  return fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
}

function adapterTensors(dir: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(path.join(dir, 'adapter_model.safetensors'));
  const out = new Map(f.names().map((n) => [n, f.readFloat32(n)]));
  f.close();
  return out;
}

describe.skipIf(!fixture.present || !dolly.present)('ditty train on the tiny model and the Dolly sample', () => {
  it('lowers the loss, writes PEFT checkpoints, exports an adapter and a merged model that score alike', async () => {
    const out = path.join(tmpRoot, 'e2e');
    const r = await runCli(['train', TINY, '--set', `output.dir=${out}`, '--set', 'output.checkpoint_every=5']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/rows/);
    const m = metrics(out);
    expect(m).toHaveLength(30);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(m.slice(0, 10).map((e) => e.loss));
    const last = mean(m.slice(-10).map((e) => e.loss));
    expect(last).toBeLessThan(first);
    expect(m.at(-1)!.val_loss).toBeTypeOf('number');
    const cks = listCheckpoints(out);
    // keep_last 3 pruned the older ones
    expect(cks.map((c) => c.step)).toEqual([20, 25, 30]);
    for (const c of cks) {
      for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer_state.json', 'config.yaml']) {
        expect(fs.existsSync(path.join(c.dir, f)), `${c.dir}/${f}`).toBe(true);
      }
    }
    const cfg = JSON.parse(fs.readFileSync(path.join(cks[2]!.dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg['peft_type']).toBe('LORA');
    expect([...(cfg['target_modules'] as string[])].sort()).toEqual(['key', 'receptance', 'value']);
    expect(cfg['r']).toBe(8);
    expect(cfg['lora_alpha']).toBe(16);
    expect(adapterTensors(cks[2]!.dir).has('base_model.model.rwkv.blocks.0.attention.key.lora_A.weight')).toBe(true);

    const text = 'Below is an instruction that describes a task.\n\n### Instruction:\nName a color.\n\n### Response:\nBlue.';
    const base = await runCli(['eval', fixture.path, '--text', text, '--json']);
    const withAdapter = await runCli(['eval', fixture.path, '--adapter', out, '--text', text, '--json']);
    expect(withAdapter.status, withAdapter.stderr).toBe(0);
    const lossOf = (s: string): number => (JSON.parse(s) as { loss: number }).loss;
    expect(lossOf(withAdapter.stdout)).not.toBe(lossOf(base.stdout));
    const merged = path.join(tmpRoot, 'merged');
    const ex = await runCli(['export', out, '--merged', merged, '--dtype', 'fp32']);
    expect(ex.status, ex.stderr).toBe(0);
    const mergedEval = await runCli(['eval', merged, '--text', text, '--json']);
    expect(mergedEval.status, mergedEval.stderr).toBe(0);
    expect(Math.abs(lossOf(mergedEval.stdout) - lossOf(withAdapter.stdout))).toBeLessThan(1e-4);
    const adapterOut = path.join(tmpRoot, 'adapter');
    expect((await runCli(['export', out, '--adapter', adapterOut])).status).toBe(0);
    expect(fs.readdirSync(adapterOut).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  });

  it('resumes exactly: k steps, stop, resume to N gives the losses of N steps straight', async () => {
    const straight = path.join(tmpRoot, 'straight');
    const split = path.join(tmpRoot, 'split');
    const set = (dir: string) => [`output.dir=${dir}`, 'training.max_steps=6', 'output.checkpoint_every=100', 'training.eval_every=3'];
    const a = await trainFromConfig(TINY, { overrides: set(straight) });
    const b1 = await trainFromConfig(TINY, { overrides: set(split), stopAfterSteps: 4 });
    expect(b1.steps).toBe(4);
    expect(listCheckpoints(split).map((c) => c.step)).toEqual([4]);
    const b2 = await trainFromConfig(TINY, { overrides: set(split) });
    expect(b2.startStep).toBe(4);
    expect([...b1.losses, ...b2.losses]).toEqual(a.losses);
    const comparable = (dir: string) => metrics(dir).map(({ step, loss, val_loss }) => ({ step, loss, val_loss }));
    expect(comparable(split)).toEqual(comparable(straight));
    const wa = adapterTensors(path.join(straight, 'checkpoint-6'));
    const wb = adapterTensors(path.join(split, 'checkpoint-6'));
    for (const [k, v] of wa) expect(Array.from(wb.get(k)!), k).toEqual(Array.from(v));
  });

  it('accumulates gradients over the whole batch: 1 x 4 equals 4 x 1', async () => {
    const run = async (batch: number, accum: number) => {
      const dir = path.join(tmpRoot, `accum-${batch}x${accum}`);
      const summary = await trainFromConfig(TINY, {
        overrides: [`output.dir=${dir}`, 'training.max_steps=2', `training.batch_size=${batch}`, `training.grad_accum=${accum}`,
          'lora.dropout=0', 'training.max_grad_norm=0'],
      });
      return { losses: summary.losses, weights: adapterTensors(path.join(dir, 'checkpoint-2')) };
    };
    const one = await run(1, 4);
    const four = await run(4, 1);
    // the step loss is normalised by the target tokens of the whole accumulated batch
    one.losses.forEach((l, i) => expect(Math.abs(l - four.losses[i]!)).toBeLessThan(1e-5));
    const a = one.weights;
    const b = four.weights;
    let worst = 0;
    for (const [k, v] of a) {
      const w = b.get(k)!;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - w[i]!));
    }
    // fp32 summation order differs; a wrong normaliser would move step 2 by a fraction of lr (3e-3)
    expect(worst).toBeLessThan(1e-5);
  });

  it('rejects a cuda backend that cannot run here with one line saying why', async () => {
    const r = await runCli(['train', TINY, '--set', 'backend=cuda', '--set', `output.dir=${path.join(tmpRoot, 'cuda')}`]);
    expect(r.status).toBe(1);
    // one line, before the data or the model is read
    // (this machine has no usable GPU: the reason is the build's or the driver's)
    expect(r.stderr).toMatch(/^ditty: error: backend cuda: (no usable NVIDIA driver \(CUDA error 35: [^\n]*\)|no NVIDIA GPU found [^\n]*|the CUDA device was not built: [^\n]*|the native engine is not available[^\n]*); use backend: cpu \(the native engine on the CPU\) or auto\n$/);
  });
});

describe.skipIf(!fixture.present || !dolly.present)('signals and resume options', () => {
  it('SIGTERM finishes the step, saves a checkpoint and exits 143; the next run resumes from it', async () => {
    const out = path.join(tmpRoot, 'sigterm');
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/ditty.js'), 'train', TINY, '--set', `output.dir=${out}`,
      '--set', 'training.max_steps=200', '--set', 'output.checkpoint_every=1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      // logged steps are lines on stdout
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (/step 3\/200/.test(stdout) && !child.killed) child.kill('SIGTERM');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, stderr).toBe(143);
    expect(stderr).toMatch(/SIGTERM: finishing this step/);
    const cks = listCheckpoints(out);
    expect(cks).toHaveLength(1);
    const stopped = cks[0]!.step;
    expect(stopped).toBeGreaterThanOrEqual(3);
    const resumed = await runCli(['train', TINY, '--set', `output.dir=${out}`, '--set', `training.max_steps=${stopped + 2}`]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resumed from ${cks[0]!.dir} at step ${stopped}`);
    expect(metrics(out).map((e) => e.step)).toEqual(Array.from({ length: stopped + 2 }, (_, i) => i + 1));
  });

  it('--no-resume starts over and --resume picks a given checkpoint', async () => {
    const out = path.join(tmpRoot, 'resume-flags');
    const base = ['train', TINY, '--set', `output.dir=${out}`, '--set', 'output.checkpoint_every=2', '--set', 'output.keep_last=0'];
    expect((await runCli([...base, '--set', 'training.max_steps=4'])).status).toBe(0);
    const fresh = await runCli([...base, '--set', 'training.max_steps=2', '--no-resume']);
    expect(fresh.status, fresh.stderr).toBe(0);
    expect(fresh.stderr).not.toMatch(/resumed from/);
    expect(fresh.stderr).toMatch(/starting over: moved the earlier run's checkpoints and metrics to .*superseded-/);
    expect(listCheckpoints(out).map((c) => c.step)).toEqual([2]);
    expect(metrics(out).map((e) => e.step)).toEqual([1, 2]);
    const picked = await runCli([...base, '--set', 'training.max_steps=4', '--resume', path.join(out, 'checkpoint-2')]);
    expect(picked.status, picked.stderr).toBe(0);
    expect(picked.stderr).toMatch(/resumed from .*checkpoint-2 at step 2/);
    const missing = await runCli([...base, '--resume', path.join(out, 'checkpoint-99')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/checkpoint-99/);
  });
});

describe.skipIf(!fixture.present || !dolly.present)('kill -9 during training', () => {
  it('never leaves a half-written checkpoint and resumes to the uninterrupted losses', async () => {
    const { killResumeTrials } = await import('../../scripts/kill-resume.js');
    const report = await killResumeTrials({ trials: 3, steps: 8, seed: 7, workDir: path.join(tmpRoot, 'kill'), minMs: 900, maxMs: 2500 });
    expect(report.problems).toEqual([]);
    expect(report.lossesMatch).toBe(true);
  });
});

const neoxFixture = sharedPath('fixtures', 'tiny-neox-sequential');

describe.skipIf(!neoxFixture.present || !dolly.present)('ditty train on GPT-NeoX with gradient checkpointing', () => {
  it('trains query_key_value adapters, lowers the loss and resumes exactly', async () => {
    const set = (dir: string, steps: number) => [
      `output.dir=${dir}`, `model.name_or_path=${neoxFixture.path}`, 'lora.target_modules=[query_key_value, dense]',
      'training.gradient_checkpointing=true', `training.max_steps=${steps}`, 'output.checkpoint_every=100', 'training.eval_every=100',
    ];
    const straight = path.join(tmpRoot, 'neox-straight');
    const long = await trainFromConfig(TINY, { overrides: set(straight, 10) });
    const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(long.losses.slice(-3))).toBeLessThan(mean(long.losses.slice(0, 3)));
    const cfg = JSON.parse(fs.readFileSync(path.join(straight, 'checkpoint-10', 'adapter_config.json'), 'utf8')) as { target_modules: string[] };
    expect([...cfg.target_modules].sort()).toEqual(['dense', 'query_key_value']);
    expect(adapterTensors(path.join(straight, 'checkpoint-10')).has('base_model.model.gpt_neox.layers.1.attention.query_key_value.lora_B.weight')).toBe(true);
    const split = path.join(tmpRoot, 'neox-split');
    const first = await trainFromConfig(TINY, { overrides: set(split, 10), stopAfterSteps: 4 });
    const rest = await trainFromConfig(TINY, { overrides: set(split, 10) });
    expect([...first.losses, ...rest.losses]).toEqual(long.losses);
  });
});
