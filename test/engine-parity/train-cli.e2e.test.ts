/**
 * `ditty train configs/tiny.yaml` (the built CLI, as test/train/train.e2e.test.ts runs it) on the
 * native engine (backend cpu) and on the tfjs engine (backend wasm): 20 steps give the same losses,
 * gradient norms and validation losses to 1e-4; a checkpoint written by one engine resumes on the
 * other (4 steps on one, resumed to 8 on the other, against the straight run of the engine it
 * resumed on); and a stop-and-resume on the native engine is bit-exact.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { nativeMissing } from '../helpers/native.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-parity-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const REL = 1e-4;

interface Entry {
  step: number;
  loss: number;
  grad_norm: number;
  val_loss?: number;
}

function metrics(dir: string): Entry[] {
  return fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Entry);
}

async function train(dir: string, backend: 'cpu' | 'wasm', steps: number): Promise<CliResult> {
  // constant learning rate (tiny.yaml): max_steps does not change steps 1..N of a longer run. No sample
  // generations: nothing here compares them, and they are a quarter of a tfjs run's time
  return await runCli(['train', TINY, '--set', `output.dir=${dir}`, '--set', `backend=${backend}`, '--set', `training.max_steps=${steps}`,
    '--set', 'output.checkpoint_every=100', '--set', 'eval.prompts=[]']);
}

function ok(r: CliResult): void {
  expect(r.status, r.stderr).toBe(0);
}

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

/** The per-step losses of `a` within `tol` of `b`'s first a.length steps; returns the worst. */
function compare(a: readonly Entry[], b: readonly Entry[], what: string, tol = REL): number {
  expect(a.map((e) => e.step)).toEqual(b.slice(0, a.length).map((e) => e.step));
  let worst = 0;
  a.forEach((e, i) => {
    const r = rel(e.loss, b[i]!.loss);
    worst = Math.max(worst, r);
    expect(r, `${what}: step ${e.step} loss ${e.loss} vs ${b[i]!.loss}`).toBeLessThan(tol);
  });
  process.stderr.write(`engine parity (cli) ${what}: worst loss ${worst.toExponential(2)}\n`);
  return worst;
}

describe.skipIf(!fixture.present || !dolly.present || nativeMissing)('ditty train on the native and the tfjs engine', () => {
  const dir = (name: string): string => path.join(tmpRoot, name);
  let cpu20: Entry[], wasm20: Entry[];

  it('20 steps: the same losses, gradient norms and validation losses per step', async () => {
    const runs = await Promise.all([train(dir('cpu20'), 'cpu', 20), train(dir('wasm20'), 'wasm', 20), train(dir('cpu4'), 'cpu', 4), train(dir('wasm4'), 'wasm', 4)]);
    runs.forEach(ok);
    cpu20 = metrics(dir('cpu20'));
    wasm20 = metrics(dir('wasm20'));
    expect(cpu20).toHaveLength(20);
    compare(cpu20, wasm20, 'cpu vs wasm, 20 steps');
    cpu20.forEach((e, i) => {
      const w = wasm20[i]!;
      expect(rel(e.grad_norm, w.grad_norm), `step ${e.step} grad norm ${e.grad_norm} vs ${w.grad_norm}`).toBeLessThan(REL);
      expect(e.val_loss === undefined).toBe(w.val_loss === undefined);
      if (e.val_loss !== undefined) expect(rel(e.val_loss, w.val_loss!), `step ${e.step} val_loss`).toBeLessThan(REL);
    });
    expect(cpu20.filter((e) => e.val_loss !== undefined).length).toBeGreaterThan(0);
    // the 4-step runs are the first 4 steps of the long ones, exactly on the same engine
    expect(metrics(dir('cpu4')).map((e) => e.loss)).toEqual(cpu20.slice(0, 4).map((e) => e.loss));
    expect(metrics(dir('wasm4')).map((e) => e.loss)).toEqual(wasm20.slice(0, 4).map((e) => e.loss));
  }, 600_000);

  it('a checkpoint resumes on the other engine, and on the native engine exactly', async () => {
    expect(cpu20, 'needs the 20-step runs').toBeDefined();
    fs.cpSync(dir('cpu4'), dir('cpu4-cpu'), { recursive: true });
    const runs = await Promise.all([train(dir('wasm4'), 'cpu', 8), train(dir('cpu4'), 'wasm', 8), train(dir('cpu4-cpu'), 'cpu', 8)]);
    runs.forEach(ok);
    for (const r of runs) expect(r.stderr).toMatch(/resumed from .*checkpoint-4 at step 4/);
    // wasm 1-4 then cpu 5-8 against cpu 1-8 straight; cpu 1-4 then wasm 5-8 against wasm 1-8
    compare(metrics(dir('wasm4')), cpu20, 'wasm 4 + cpu 4 vs cpu 8 straight');
    compare(metrics(dir('cpu4')), wasm20, 'cpu 4 + wasm 4 vs wasm 8 straight');
    // kill-free stop and resume on the native engine: bit-exact
    expect(metrics(dir('cpu4-cpu')).map((e) => e.loss)).toEqual(cpu20.slice(0, 8).map((e) => e.loss));
  }, 600_000);
});
