/**
 * Kill -9 at random moments during `ditty train` with a checkpoint every step, resume each time, and
 * check that every checkpoint folder under its final name is complete and that the finished run has
 * the losses of an uninterrupted one.
 *   npm run build && node dist/scripts/kill-resume.js [--trials 20] [--steps 16] [--seed 1] [--backend cpu] [--after-steps 3]
 * Without --backend the runs use configs/tiny.yaml's backend (wasm, the tfjs engine). With --after-steps n
 * each kill comes 0-400 ms after the child's k-th logged step (k drawn in 1..n) instead of 0.8-3.5 s after its start.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { Rng } from '../src/random/rng.js';

/** The folder holding package.json: scripts/ when run from source, dist/scripts/ when compiled. */
function findRepoRoot(from: string): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
const CHECKPOINT_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'config.yaml', 'trainer_state.json'];

export interface KillResumeOptions {
  trials: number;
  steps: number;
  seed: number;
  workDir: string;
  /** kill after a delay drawn in [minMs, maxMs] */
  minMs: number;
  maxMs: number;
  /** `backend` for every run (e.g. cpu: the native engine); absent: the config's */
  backend?: string;
  /**
   * Count the delay from the child's n-th logged step (n drawn in 1..afterSteps) instead of from its
   * start, so that every kill lands in training or in a checkpoint write however long the start
   * takes (a loaded machine, a fast engine); absent: from the start.
   */
  afterSteps?: number;
}

export interface KillResumeReport {
  kills: number;
  checkpointsSeen: number;
  problems: string[];
  lossesMatch: boolean;
}

function trainArgs(config: string, dir: string, steps: number, backend: string | undefined): string[] {
  return [path.join(repoRoot, 'bin/ditty.js'), 'train', config, '--set', `output.dir=${dir}`, '--set', 'output.checkpoint_every=1',
    '--set', `training.max_steps=${steps}`, '--set', 'output.keep_last=2', ...(backend === undefined ? [] : ['--set', `backend=${backend}`])];
}

/** Problems with the checkpoint folders of a run folder (empty when all is well). */
export function auditRunFolder(dir: string): { problems: string[]; complete: number } {
  const problems: string[] = [];
  let complete = 0;
  if (!fs.existsSync(dir)) return { problems, complete };
  for (const name of fs.readdirSync(dir)) {
    if (!/^checkpoint-\d+$/.test(name)) continue;
    const ck = path.join(dir, name);
    for (const f of CHECKPOINT_FILES) if (!fs.existsSync(path.join(ck, f))) problems.push(`${ck}: missing ${f}`);
    try {
      JSON.parse(fs.readFileSync(path.join(ck, 'trainer_state.json'), 'utf8'));
      for (const f of ['adapter_model.safetensors', 'optimizer.safetensors']) SafetensorsFile.open(path.join(ck, f)).close();
      complete++;
    } catch (err) {
      problems.push(`${ck}: ${(err as Error).message}`);
    }
  }
  return { problems, complete };
}

function losses(dir: string): number[] {
  if (!fs.existsSync(path.join(dir, 'metrics.jsonl'))) return [];
  return fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

/** Runs the child and kills it `ms` after its start, or after its `afterStepLines`-th logged step line. */
function killAfter(args: string[], ms: number, afterStepLines?: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', afterStepLines === undefined ? 'ignore' : 'pipe', 'ignore'] });
    let timer: NodeJS.Timeout | undefined;
    if (afterStepLines === undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), ms);
    } else {
      let seen = 0;
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        seen += d.match(/^step \d+\/\d+/gm)?.length ?? 0;
        if (seen >= afterStepLines && timer === undefined) timer = setTimeout(() => child.kill('SIGKILL'), ms);
      });
    }
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
}

export async function killResumeTrials(o: KillResumeOptions): Promise<KillResumeReport> {
  const config = path.join(repoRoot, 'configs', 'tiny.yaml');
  const killed = path.join(o.workDir, 'killed');
  const straight = path.join(o.workDir, 'straight');
  const rng = new Rng(o.seed);
  const problems: string[] = [];
  let checkpointsSeen = 0;
  for (let trial = 0; trial < o.trials; trial++) {
    const ms = o.minMs + rng.next() * (o.maxMs - o.minMs);
    const afterStepLines = o.afterSteps === undefined ? undefined : 1 + Math.floor(rng.next() * o.afterSteps);
    await killAfter(trainArgs(config, killed, o.steps, o.backend), ms, afterStepLines);
    const audit = auditRunFolder(killed);
    problems.push(...audit.problems.map((p) => `after kill ${trial + 1}: ${p}`));
    checkpointsSeen += audit.complete;
  }
  const finish = spawnSync(process.execPath, trainArgs(config, killed, o.steps, o.backend), { encoding: 'utf8' });
  if (finish.status !== 0) problems.push(`final resume failed: ${finish.stderr}`);
  const ref = spawnSync(process.execPath, trainArgs(config, straight, o.steps, o.backend), { encoding: 'utf8' });
  if (ref.status !== 0) problems.push(`uninterrupted run failed: ${ref.stderr}`);
  problems.push(...auditRunFolder(killed).problems);
  const a = losses(killed);
  const b = losses(straight);
  const lossesMatch = a.length === o.steps && a.length === b.length && a.every((x, i) => x === b[i]);
  return { kills: o.trials, checkpointsSeen, problems, lossesMatch };
}

async function main(): Promise<void> {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const trials = Number(args.get('trials') ?? 20);
  const steps = Number(args.get('steps') ?? 16);
  const seed = Number(args.get('seed') ?? 1);
  const backend = args.get('backend');
  const afterSteps = args.has('after-steps') ? Number(args.get('after-steps')) : undefined;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-kill-'));
  console.log(`command: node dist/scripts/kill-resume.js --trials ${trials} --steps ${steps} --seed ${seed}${backend === undefined ? '' : ` --backend ${backend}`}${afterSteps === undefined ? '' : ` --after-steps ${afterSteps}`}`);
  const started = performance.now();
  const timing = afterSteps === undefined ? { minMs: 800, maxMs: 3500 } : { minMs: 0, maxMs: 400, afterSteps };
  const report = await killResumeTrials({ trials, steps, seed, workDir, ...timing, ...(backend === undefined ? {} : { backend }) });
  console.log(`${report.kills} kill -9s, ${report.checkpointsSeen} complete checkpoint folders audited after kills, `
    + `${report.problems.length} problems, final losses ${report.lossesMatch ? 'equal' : 'DIFFER from'} an uninterrupted run `
    + `(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  for (const p of report.problems) console.log(`  ${p}`);
  fs.rmSync(workDir, { recursive: true, force: true });
  process.exitCode = report.problems.length === 0 && report.lossesMatch ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
