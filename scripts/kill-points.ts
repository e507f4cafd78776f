/**
 * kill -9 before every file operation of checkpoint saving and pruning in a real `ditty train`
 * (DITTY_FAULT_AT=n with DITTY_FAULT_MATCH=checkpoint-: the trainer kills itself before its n-th
 * operation on a checkpoint path), each followed by an audit of the run folder (every checkpoint
 * under its final name whole) and a resume that must end with the losses and the adapter and
 * optimizer bytes of an uninterrupted run. npm test runs the in-process version over every
 * operation (test/train/crash-points.test.ts) and a few real kills (test/train/kill-points.e2e.test.ts);
 * this one takes minutes:
 *   npm run build && node dist/scripts/kill-points.js [--steps 3] [--stride 1] [--backend cpu]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditRunFolder } from './kill-resume.js';

function findRepoRoot(from: string): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

export interface KillPointsOptions {
  steps: number;
  /** kill at every `stride`-th operation */
  stride: number;
  workDir: string;
  backend?: string;
}

export interface KillPointsReport {
  operations: number;
  kills: number;
  problems: string[];
}

function train(dir: string, o: KillPointsOptions, env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnSync> {
  const args = [path.join(repoRoot, 'bin/ditty.js'), 'train', path.join(repoRoot, 'configs', 'tiny.yaml'), '--set', `output.dir=${dir}`,
    '--set', `training.max_steps=${o.steps}`, '--set', 'output.checkpoint_every=1', '--set', 'output.keep_last=1',
    '--set', 'data.validation_fraction=0', '--set', 'training.eval_every=null', ...(o.backend === undefined ? [] : ['--set', `backend=${o.backend}`])];
  return spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env } });
}

const losses = (dir: string): string => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => String((JSON.parse(l) as { loss: number }).loss)).join(',');

export function killPoints(o: KillPointsOptions): KillPointsReport {
  const reference = path.join(o.workDir, 'reference');
  const trace = path.join(o.workDir, 'trace');
  const ref = train(reference, o, { DITTY_FAULT_TRACE: trace, DITTY_FAULT_MATCH: 'checkpoint-' });
  if (ref.status !== 0) return { operations: 0, kills: 0, problems: [`the uninterrupted run failed: ${String(ref.stderr)}`] };
  const ops = fs.readFileSync(trace, 'utf8').trim().split('\n');
  const last = path.join(reference, `checkpoint-${o.steps}`);
  const problems: string[] = [];
  let kills = 0;
  for (let n = 1; n <= ops.length; n += o.stride) {
    const dir = path.join(o.workDir, `kill-${n}`);
    const where = `kill before ${ops[n - 1]}`;
    const killed = train(dir, o, { DITTY_FAULT_AT: String(n), DITTY_FAULT_MATCH: 'checkpoint-' });
    if (killed.signal !== 'SIGKILL') problems.push(`${where}: not killed (exit ${killed.status}): ${String(killed.stderr)}`);
    kills++;
    problems.push(...auditRunFolder(dir).problems.map((p) => `${where}: ${p}`));
    const resumed = train(dir, o);
    if (resumed.status !== 0) {
      problems.push(`${where}: the resume failed: ${String(resumed.stderr)}`);
    } else {
      if (losses(dir) !== losses(reference)) problems.push(`${where}: the losses differ from the uninterrupted run`);
      for (const f of ['adapter_model.safetensors', 'optimizer.safetensors']) {
        const got = path.join(dir, `checkpoint-${o.steps}`, f);
        if (!fs.existsSync(got) || !fs.readFileSync(got).equals(fs.readFileSync(path.join(last, f)))) problems.push(`${where}: ${f} differs`);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { operations: ops.length, kills, problems };
}

function main(): void {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const o: KillPointsOptions = {
    steps: Number(args.get('steps') ?? 3), stride: Number(args.get('stride') ?? 1),
    workDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-kill-points-')),
    ...(args.has('backend') ? { backend: args.get('backend')! } : {}),
  };
  const started = performance.now();
  const r = killPoints(o);
  console.log(`${r.kills} kill -9s at ${r.operations} checkpoint file operations of a ${o.steps}-step run (stride ${o.stride}), `
    + `${r.problems.length} problems (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  for (const p of r.problems) console.log(`  ${p}`);
  fs.rmSync(o.workDir, { recursive: true, force: true });
  process.exitCode = r.problems.length === 0 && r.kills > 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main();
