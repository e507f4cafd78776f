/**
 * kill -9 at chosen file operations of a real `ditty train` (DITTY_FAULT_AT: the process kills
 * itself before operation n touches the disk), one after the other on the same run folder: inside
 * a checkpoint write, inside the metrics rewrite of the resume that follows, at the rename that puts
 * a checkpoint in place, and inside keep_last pruning. After each kill only whole checkpoints are
 * under their names; the last resume ends bit-identical to an uninterrupted run (the same losses,
 * the same adapter and optimizer bytes). test/train/crash-points.test.ts covers every operation
 * in-process; this shows the same on the real trainer, with real kills.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from '../../src/runtime/run-folder.js';
import { checkpointProblem } from '../../src/train/checkpoint.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-kill-points-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

interface Result { code: number | null; signal: NodeJS.Signals | null; stderr: string }

function train(dir: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const args = [path.join(REPO_ROOT, 'bin/ditty.js'), 'train', TINY, '--set', `output.dir=${dir}`, '--set', 'training.max_steps=3',
    '--set', 'output.checkpoint_every=1', '--set', 'output.keep_last=1', '--set', 'data.validation_fraction=0', '--set', 'training.eval_every=null'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const losses = (dir: string): number[] => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => (JSON.parse(l) as { loss: number }).loss);
const bytes = (dir: string, file: string): Buffer => fs.readFileSync(path.join(dir, 'checkpoint-3', file));

/** Killed at operation `n` of those whose path contains `match`: killed by SIGKILL, leaving only whole checkpoints. */
async function killAt(dir: string, match: string, n: number, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const r = await train(dir, { DITTY_FAULT_AT: String(n), DITTY_FAULT_MATCH: match, ...env });
  expect(r.signal, r.stderr).toBe('SIGKILL');
  for (const name of fs.readdirSync(dir).filter((f) => /^checkpoint-\d+$/.test(f))) {
    expect(checkpointProblem(path.join(dir, name)), `${match} #${n}: ${name}`).toBeUndefined();
  }
}

describe.skipIf(!fixture.present || !dolly.present)('kill -9 at file operations of a real training run', () => {
  const reference = path.join(tmpRoot, 'reference');
  let ops: { n: number; op: string; target: string }[] = [];

  beforeAll(async () => {
    const trace = path.join(tmpRoot, 'trace');
    const r = await train(reference, { DITTY_FAULT_TRACE: trace, DITTY_FAULT_MATCH: 'checkpoint-' });
    expect(r.code, r.stderr).toBe(0);
    ops = fs.readFileSync(trace, 'utf8').trim().split('\n').map((l) => {
      const [n, op, ...target] = l.split(' ');
      return { n: Number(n), op: op!, target: target.join(' ') };
    });
  });

  /** The first traced operation that is `op` on a path matching `target`. */
  const point = (op: string, target: RegExp): number => {
    const found = ops.find((o) => o.op === op && target.test(o.target));
    if (found === undefined) throw new Error(`no ${op} on ${target} in the trace`);
    return found.n;
  };

  it('killed inside a checkpoint write, inside the metrics rewrite of the resume, at the rename into place and inside pruning: resumes bit-exactly', async () => {
    const dir = path.join(tmpRoot, 'killed');
    // 1. inside the write of checkpoint-2: step 2 is logged, not saved
    await killAt(dir, 'checkpoint-', point('write', /\.checkpoint-2\.tmp-[^/]+\/optimizer\.safetensors$/) + 2);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1]);
    expect(losses(dir)).toHaveLength(2);

    // 2. the resume rewrites metrics.jsonl back to step 1; killed at the rename that replaces it (its 4th operation)
    const trace = path.join(tmpRoot, 'metrics-trace');
    await killAt(dir, 'metrics.jsonl', 4, { DITTY_FAULT_TRACE: trace });
    expect(fs.readFileSync(trace, 'utf8')).toMatch(/^4 rename .*metrics\.jsonl$/m);
    // the history is the old file, whole, not a truncated one
    expect(losses(dir)).toEqual(losses(reference).slice(0, 2));

    // 3. at the rename that puts checkpoint-2 in place (numbered among the operations on checkpoint-2's paths)
    const onCheckpoint2 = ops.filter((o) => o.target.includes('checkpoint-2'));
    await killAt(dir, 'checkpoint-2', onCheckpoint2.findIndex((o) => o.op === 'rename' && /\/checkpoint-2$/.test(o.target)) + 1);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1]);

    // 4. inside keep_last pruning of checkpoint-1 once checkpoint-2 is saved: its rename away (1), then a delete (2); killed before the second (3)
    await killAt(dir, 'checkpoint-1', 3);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([2]);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('.checkpoint-1.tmp-'))).toBe(true);

    // 5. the last resume ends as the uninterrupted run did
    const r = await train(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/internal error|warning: resuming/);
    expect(losses(dir)).toEqual(losses(reference));
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([3]);
    for (const f of ['adapter_model.safetensors', 'optimizer.safetensors']) expect(bytes(dir, f).equals(bytes(reference, f)), f).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.checkpoint-'))).toEqual([]);
  });
});
