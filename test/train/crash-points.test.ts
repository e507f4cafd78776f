/**
 * A crash at every file operation of checkpoint saving, pruning and the resume that follows: the
 * run folder's checkpoint lifecycle (the functions runTraining calls, in its order) is driven with
 * small tensors, and a simulated crash (src/io/fault-injection.ts: operation n and every later one
 * never reach the disk) is placed at each operation in turn. After each crash every checkpoint
 * under its final name must be whole and hold what was saved for its step, resume must pick the
 * newest one, and the resumed run must end byte-identical to an uninterrupted one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { setFaultPlan, SimulatedCrash, type FaultOp } from '../../src/io/fault-injection.js';
import type { LoraConfig } from '../../src/lora/config.js';
import { listCheckpoints } from '../../src/runtime/run-folder.js';
import {
  checkpointProblem, cleanIncomplete, loadCheckpoint, pruneCheckpoints, resumableCheckpoint, saveCheckpoint, setAsideCheckpoints,
  type CheckpointContents, type TrainerState,
} from '../../src/train/checkpoint.js';
import { MetricsFile } from '../../src/train/progress.js';

// fsync is free on tmpfs, and this test makes thousands of them
const tmpRoot = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'ditty-crash-points-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
afterEach(() => setFaultPlan(undefined));

const STEPS = 2;
const LORA: LoraConfig = { r: 2, alpha: 4, dropout: 0, targetModules: ['key'], useRslora: false, bias: 'none', fanInFanOut: false };

/** What step `step` saves: values that differ per step, so a checkpoint shows which step wrote it. */
function contents(step: number): CheckpointContents {
  const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => step * 1000 + k * 100 + i);
  const state: TrainerState = {
    format: 1, global_step: step, total_steps: STEPS, epoch: step / STEPS, batcher: { epoch: 0, index: step }, tokens_seen: 64 * step,
    elapsed_seconds: step, seed: 1, data_fingerprint: 'f', log_history: [], batch_size: 1, grad_accum: 1,
  };
  return {
    state, loraConfig: LORA, adapterMeta: { baseModelNameOrPath: 'tiny' }, configYaml: `step: ${step}\n`,
    adapter: [
      { name: 'base_model.model.key.lora_A.weight', shape: [2, 4], values: values(8, 0) },
      { name: 'base_model.model.key.lora_B.weight', shape: [4, 2], values: values(8, 1) },
    ],
    optimizer: new Map([['key.lora_A', { expAvg: values(8, 2), expAvgSq: values(8, 3) }]]),
  };
}

const entry = (step: number) => ({ step, loss: 10 - step, lr: 1e-3, grad_norm: 1, tokens: 64, micro_batches: 1, tokens_per_s: 1, elapsed: step, epoch: 0 });

/** The trainer's checkpoint lifecycle: clean up, pick the checkpoint, set later ones aside, trim the metrics, then step/save/prune. */
async function run(runDir: string, keep = 1): Promise<void> {
  fs.mkdirSync(runDir, { recursive: true }); // the run lock's work, before anything is written
  const metrics = new MetricsFile(path.join(runDir, 'metrics.jsonl'));
  await cleanIncomplete(runDir);
  const from = resumableCheckpoint(runDir, () => undefined);
  let step = 0;
  if (from === undefined) {
    await setAsideCheckpoints(runDir, [metrics.file], 0);
  } else {
    step = loadCheckpoint(from).state.global_step;
    await setAsideCheckpoints(runDir, [metrics.file], step);
    await pruneCheckpoints(runDir, keep);
    await metrics.truncateAfter(step);
  }
  while (step < STEPS) {
    step++;
    metrics.append(entry(step));
    await saveCheckpoint(runDir, contents(step));
    await pruneCheckpoints(runDir, keep);
  }
}

/** Operations a run makes from the state of `runDir` (traced, nothing injected). */
async function countOps(runDir: string): Promise<{ n: number; op: FaultOp; target: string }[]> {
  const ops: { n: number; op: FaultOp; target: string }[] = [];
  setFaultPlan({ trace: (n, op, target) => ops.push({ n, op, target }) });
  await run(runDir);
  setFaultPlan(undefined);
  return ops;
}

async function crashAt(runDir: string, n: number): Promise<void> {
  setFaultPlan({ at: n, action: 'crash' });
  await expect(run(runDir)).rejects.toBeInstanceOf(SimulatedCrash);
  setFaultPlan(undefined);
}

/** Files of the checkpoints and the metrics, name -> bytes (hex), for comparing whole run folders. */
function snapshot(runDir: string): Record<string, string> {
  const out: Record<string, string> = { 'metrics.jsonl': fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'hex') };
  for (const c of listCheckpoints(runDir)) {
    for (const f of fs.readdirSync(c.dir).sort()) out[`${path.basename(c.dir)}/${f}`] = fs.readFileSync(path.join(c.dir, f), 'hex');
  }
  return out;
}

/** Every checkpoint under its final name is whole and holds exactly what its step saved. */
function auditAfterCrash(runDir: string, where: string): number | undefined {
  for (const name of fs.readdirSync(runDir).filter((n) => /^checkpoint-\d+$/.test(n))) {
    const dir = path.join(runDir, name);
    expect(checkpointProblem(dir), `${where}: ${name}`).toBeUndefined();
    const step = Number(name.slice('checkpoint-'.length));
    const loaded = loadCheckpoint(dir);
    const want = contents(step);
    expect(loaded.state.global_step, where).toBe(step);
    for (const a of want.adapter) expect([...loaded.adapter.get(a.name)!], `${where}: ${name} ${a.name}`).toEqual([...a.values]);
    expect([...loaded.optimizer.get('key.lora_A')!.expAvgSq], where).toEqual([...want.optimizer.get('key.lora_A')!.expAvgSq]);
  }
  const warnings: string[] = [];
  const picked = resumableCheckpoint(runDir, (m) => warnings.push(m));
  expect(warnings, where).toEqual([]);
  const newest = listCheckpoints(runDir).at(-1)?.dir;
  expect(picked, where).toBe(newest);
  return picked === undefined ? undefined : loadCheckpoint(picked).state.global_step;
}

describe('a crash at every file operation of checkpoint save, prune and resume', () => {
  const reference = path.join(tmpRoot, 'reference');
  let want: Record<string, string>;

  it('an uninterrupted run: the reference', async () => {
    await run(reference);
    want = snapshot(reference);
    expect(listCheckpoints(reference).map((c) => c.step)).toEqual([2]);
  });

  it('a crash at each operation of a run with saves and prunes, then a resume: identical to the reference', async () => {
    const ops = await countOps(path.join(tmpRoot, 'count'));
    const kinds = new Set(ops.map((o) => o.op));
    for (const k of ['mkdir', 'open', 'write', 'append', 'fsync', 'rename', 'unlink', 'rmdir'] as const) expect(kinds).toContain(k);
    const resumedAt = new Set<number>();
    for (const { n, op, target } of ops) {
      const dir = path.join(tmpRoot, `crash-${n}`);
      await crashAt(dir, n);
      const where = `crash before operation ${n} (${op} ${target})`;
      const step = auditAfterCrash(dir, where);
      resumedAt.add(step ?? 0);
      await run(dir);
      expect(snapshot(dir), where).toEqual(want);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('.')), where).toEqual([]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // crashes landed before the first checkpoint, between each pair, and after the last
    expect([...resumedAt].sort()).toEqual([0, 1, 2]);
    process.stderr.write(`crash points: ${ops.length} operations of a ${STEPS}-step run (keep_last 1), each crashed and resumed\n`);
  });

  it('a crash at each operation of the resume itself (set aside, metrics rewrite) and of its first save', async () => {
    // a first run that died after logging step 2 but before its checkpoint was in place: the resume
    // must trim metrics.jsonl back to step 1
    const ops = await countOps(path.join(tmpRoot, 'count-first'));
    const died = ops.find((o) => o.op === 'rename' && o.target.endsWith('checkpoint-2'))!.n;
    const resumeOps = await (async () => {
      const dir = path.join(tmpRoot, 'count-resume');
      await crashAt(dir, died);
      return countOps(dir);
    })();
    expect(resumeOps.some((o) => o.op === 'rename' && o.target.endsWith('metrics.jsonl'))).toBe(true);
    for (const { n, op, target } of resumeOps) {
      const dir = path.join(tmpRoot, `resume-crash-${n}`);
      await crashAt(dir, died);
      await crashAt(dir, n);
      const where = `resume crashed before operation ${n} (${op} ${target})`;
      auditAfterCrash(dir, where);
      const steps = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
      // the history before the resumed step is never lost
      expect(steps[0], where).toBe(1);
      await run(dir);
      expect(snapshot(dir), where).toEqual(want);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a damaged newest checkpoint', () => {
  async function twoCheckpoints(name: string): Promise<string> {
    const dir = path.join(tmpRoot, name);
    await run(dir, 0);
    return dir;
  }

  it.each([
    ['a truncated optimizer.safetensors', (d: string) => fs.truncateSync(path.join(d, 'optimizer.safetensors'), 40)],
    ['a truncated adapter_model.safetensors', (d: string) => fs.truncateSync(path.join(d, 'adapter_model.safetensors'), 100)],
    ['a trainer_state.json that is not JSON', (d: string) => fs.writeFileSync(path.join(d, 'trainer_state.json'), '{"format": 1, "glo')],
    ['a missing adapter_config.json', (d: string) => fs.rmSync(path.join(d, 'adapter_config.json'))],
  ])('%s: resume falls back to the previous complete one with a warning', async (_what, damage) => {
    const dir = await twoCheckpoints(`damaged-${_what.replace(/\W+/g, '-')}`);
    damage(path.join(dir, 'checkpoint-2'));
    const warnings: string[] = [];
    expect(resumableCheckpoint(dir, (m) => warnings.push(m))).toBe(path.join(dir, 'checkpoint-1'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: resuming from .*checkpoint-1, the newest complete checkpoint: .*checkpoint-2 is damaged \(.+\)$/);
    // the resumed run sets the damaged one aside and saves step 2 again
    await run(dir, 0);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1, 2]);
    expect(checkpointProblem(path.join(dir, 'checkpoint-2'))).toBeUndefined();
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('superseded-'))).toHaveLength(1);
  });

  it('when no checkpoint is whole, resume is refused in one line that says how to go on', async () => {
    const dir = await twoCheckpoints('all-damaged');
    for (const c of listCheckpoints(dir)) fs.truncateSync(path.join(c.dir, 'optimizer.safetensors'), 10);
    expect(() => resumableCheckpoint(dir, () => undefined)).toThrow(/no checkpoint can be resumed: .*checkpoint-2 is damaged .*--no-resume/);
  });
});
