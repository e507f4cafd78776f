import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from '../../src/runtime/run-folder.js';
import { lockRunFolder, LOCK_FILE } from '../../src/train/run-lock.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-resume-rules-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const train = async (dir: string, ...sets: string[]) =>
  await runCli(['train', TINY, '--set', `output.dir=${dir}`, ...sets.flatMap((s) => ['--set', s])]);
const steps = (dir: string): number[] => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => (JSON.parse(l) as { step: number }).step);

describe.skipIf(!fixture.present || !dolly.present)('resume rules', () => {
  it('an epoch ends on a step boundary: the last step takes the batches left, no data from the next epoch', async () => {
    const rows = fs.readFileSync(dolly.path, 'utf8').split('\n').slice(0, 6).join('\n');
    const data = path.join(tmpRoot, 'six.jsonl');
    fs.writeFileSync(data, `${rows}\n`);
    const dir = path.join(tmpRoot, 'epoch');
    // 6 rows, 1 held out, one padded block each (all fit in 512): 5 batches of 1, accumulated by 4 -> steps of 4 and 1
    const r = await train(dir, `data.dataset=${data}`, 'data.packing=false', 'data.block_size=512', 'data.validation_fraction=0.2',
      'training.max_steps=null', 'training.epochs=1', 'training.batch_size=1', 'training.grad_accum=4', 'training.eval_every=null');
    expect(r.status, r.stderr).toBe(0);
    const m = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; epoch: number; micro_batches: number });
    expect(m.map((e) => e.step)).toEqual([1, 2]);
    expect(m.map((e) => e.micro_batches)).toEqual([4, 1]);
    expect(m.at(-1)!.epoch).toBe(1);
  });

  it('resuming from an older checkpoint moves the later ones aside; the next run continues the new timeline', async () => {
    const dir = path.join(tmpRoot, 'branch');
    expect((await train(dir, 'training.max_steps=6', 'output.checkpoint_every=2', 'output.keep_last=0')).status).toBe(0);
    const r = await runCli(['train', TINY, '--set', `output.dir=${dir}`, '--set', 'training.max_steps=4', '--set', 'output.keep_last=1',
      '--set', 'output.checkpoint_every=2', '--resume', path.join(dir, 'checkpoint-2')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/moved the later checkpoints to .*superseded-/);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([4]);
    expect(steps(dir)).toEqual([1, 2, 3, 4]);
    const again = await train(dir, 'training.max_steps=5', 'output.checkpoint_every=2', 'output.keep_last=1');
    expect(again.stderr).toMatch(/resumed from .*checkpoint-4 at step 4\/5/);
    expect(steps(dir)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses to resume with a different batch size, grad_accum or LoRA shape, and says how to proceed', async () => {
    const dir = path.join(tmpRoot, 'changed');
    expect((await train(dir, 'training.max_steps=2')).status).toBe(0);
    const batch = await train(dir, 'training.max_steps=4', 'training.batch_size=1');
    expect(batch.status).toBe(1);
    expect(batch.stderr).toMatch(/cannot resume this checkpoint: training.batch_size was 2, now 1/);
    expect(batch.stderr).toMatch(/--no-resume/);
    const accum = await train(dir, 'training.max_steps=4', 'training.grad_accum=1');
    expect(accum.status).toBe(1);
    expect(accum.stderr).toMatch(/cannot resume this checkpoint: training.grad_accum was 2, now 1/);
    expect(accum.stderr).not.toMatch(/batch_size was/);
    const lora = await train(dir, 'training.max_steps=4', 'lora.alpha=64', 'lora.target_modules=[key]');
    expect(lora.status).toBe(1);
    expect(lora.stderr).toMatch(/lora.alpha was 16, now 64/);
    expect(lora.stderr).toMatch(/lora.target_modules selects other modules/);
    expect(lora.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a --resume that is not a checkpoint before loading anything, and a checkpoint trained on other data', async () => {
    const dir = path.join(tmpRoot, 'bad-resume');
    const missing = await runCli(['train', TINY, '--set', `output.dir=${dir}`, '--resume', path.join(tmpRoot, 'nope')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no such checkpoint folder/);
    const notCheckpoint = await runCli(['train', TINY, '--set', `output.dir=${dir}`, '--resume', tmpRoot]);
    expect(notCheckpoint.status).toBe(1);
    expect(notCheckpoint.stderr).toMatch(/not a complete ditty checkpoint folder \(no trainer_state.json\)/);
    expect(notCheckpoint.stderr).not.toMatch(/^model /m);
    expect((await train(dir, 'training.max_steps=1')).status).toBe(0);
    const otherData = await train(dir, 'training.max_steps=2', 'data.block_size=32');
    expect(otherData.status).toBe(1);
    expect(otherData.stderr).toMatch(/cannot resume this checkpoint: it was trained on different data/);
    expect(otherData.stderr).not.toMatch(/\n\s+at /);
  });

  it('says when a run is already complete', async () => {
    const dir = path.join(tmpRoot, 'done');
    expect((await train(dir, 'training.max_steps=2')).status).toBe(0);
    const r = await train(dir, 'training.max_steps=2');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/nothing to train: the run in this output folder is already at step 2/);
  });

  it('reports divergence as one line, not an internal error', async () => {
    const r = await train(path.join(tmpRoot, 'diverge'), 'training.max_steps=5', 'training.learning_rate=1e12', 'training.max_grad_norm=0');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not finite/);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});

describe('run folder lock', () => {
  it('refuses a folder held by a live process and takes over a stale lock', () => {
    const dir = path.join(tmpRoot, 'locked');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${process.ppid}\n`);
    expect(() => lockRunFolder(dir)).toThrow(new RegExp(`another ditty train \\(pid ${process.ppid}\\)`));
    fs.writeFileSync(path.join(dir, LOCK_FILE), '999999999\n');
    const release = lockRunFolder(dir);
    expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim()).toMatch(new RegExp(`^${process.pid}( \\d+)?$`));
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });
});
