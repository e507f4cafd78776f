/**
 * The long fuzz run of ditty's readers (the seeded short run is test/io/fuzz-readers.test.ts):
 *
 *   npx tsc -p . && node dist/scripts/fuzz-readers.js --cases N [--seed S] [--kinds safetensors,torch,legacy,pickle,yaml]
 *     [--safetensors N] [--torch N] [--legacy N] [--pickle N] [--yaml N] [--timeout-ms T] [--jobs J]
 *
 * Each case runs in a worker process (a heap limit of 2 GB), so that a crash, a fatal V8 error or
 * a hang is seen and counted instead of ending the run. Prints counts per kind and outcome
 * (ok / clean / stack / wrong / crash / hang) and the first cases of every bad outcome; exits 1 when
 * any case was not ok or clean.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS, makeBases, makeCase, type Bases, type Kind } from './fuzz/cases.js';
import { runCase, type Outcome } from './fuzz/run-case.js';

interface Job { kind: Kind; index: number }
interface Reply { index: number; kind: Kind; outcome: Outcome; detail: string; ms: number }

const OUTCOMES: readonly Outcome[] = ['ok', 'clean', 'stack', 'wrong', 'crash', 'hang'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

async function worker(): Promise<void> {
  const seed = Number(arg('seed') ?? 1);
  const bases: Bases = await makeBases();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-fuzz-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  process.on('message', (job: Job) => {
    void (async () => {
      const c = makeCase(bases, job.kind, job.index, seed);
      const t0 = Date.now();
      const r = await runCase(c, dir);
      process.send!({ index: job.index, kind: job.kind, outcome: r.outcome, detail: `${c.note}: ${r.detail}`, ms: Date.now() - t0 } satisfies Reply);
    })();
  });
  process.send!('ready');
}

class Slot {
  private child?: ChildProcess;
  private ready?: Promise<void>;
  constructor(private readonly seed: number, private readonly timeoutMs: number) {}

  private start(): Promise<void> {
    const child = fork(fileURLToPath(import.meta.url), ['--worker', '--seed', String(this.seed)], {
      execArgv: ['--max-old-space-size=2048'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.resume();
    this.child = child;
    return new Promise((resolve, reject) => {
      child.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(`worker said ${String(m)}`))));
      child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
    });
  }

  async run(job: Job): Promise<Reply> {
    if (this.child === undefined || this.child.exitCode !== null || this.child.signalCode !== null) this.ready = this.start();
    await this.ready;
    const child = this.child!;
    return new Promise<Reply>((resolve) => {
      const done = (r: Reply) => { clearTimeout(timer); child.removeListener('message', onMessage); child.removeListener('exit', onExit); resolve(r); };
      const onMessage = (m: Reply) => done(m);
      const onExit = (code: number | null, signal: string | null) => {
        this.child = undefined;
        done({ ...job, outcome: 'crash', detail: `${makeNote(job)}: worker died (exit ${code}, signal ${signal})`, ms: 0 });
      };
      const timer = setTimeout(() => {
        child.removeListener('exit', onExit);
        child.kill('SIGKILL');
        this.child = undefined;
        done({ ...job, outcome: 'hang', detail: `${makeNote(job)}: no answer in ${this.timeoutMs} ms`, ms: this.timeoutMs });
      }, this.timeoutMs);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(job);
    });
  }

  stop(): void { this.child?.kill(); }
}

let notes: ((job: Job) => string) | undefined;
function makeNote(job: Job): string { return notes ? notes(job) : `${job.kind} #${job.index}`; }

async function main(): Promise<void> {
  const cases = Number(arg('cases') ?? 200);
  const seed = Number(arg('seed') ?? 1);
  const timeoutMs = Number(arg('timeout-ms') ?? 60_000);
  const jobsN = Number(arg('jobs') ?? 2);
  const kinds = (arg('kinds')?.split(',') ?? KINDS) as Kind[];
  const counts = new Map<Kind, number>(kinds.map((k) => [k, Number(arg(k) ?? cases)]));
  const bases = await makeBases();
  notes = (job) => `${job.kind} #${job.index} (${makeCase(bases, job.kind, job.index, seed).note})`;

  const queue: Job[] = [];
  for (const k of kinds) for (let i = 0; i < counts.get(k)!; i++) queue.push({ kind: k, index: i });
  const tally = new Map<string, number>();
  const examples = new Map<string, string[]>();
  const slowest: Reply[] = [];
  const t0 = Date.now();
  let done = 0;
  const slots = Array.from({ length: jobsN }, () => new Slot(seed, timeoutMs));
  await Promise.all(slots.map(async (slot) => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      const r = await slot.run(job);
      const key = `${r.kind}/${r.outcome}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
      if (r.outcome !== 'ok' && r.outcome !== 'clean') {
        const list = examples.get(key) ?? [];
        if (list.length < 5) examples.set(key, [...list, `#${r.index} ${r.detail}`]);
      }
      slowest.push(r);
      slowest.sort((a, b) => b.ms - a.ms).splice(3);
      if (++done % 500 === 0) process.stderr.write(`${done} cases, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    slot.stop();
  }));

  console.log(`fuzz-readers: seed ${seed}, ${done} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s (timeout ${timeoutMs} ms per case)`);
  console.log(`${'kind'.padEnd(12)}${OUTCOMES.map((o) => o.padStart(8)).join('')}`);
  let bad = 0;
  for (const k of kinds) {
    const row = OUTCOMES.map((o) => tally.get(`${k}/${o}`) ?? 0);
    bad += row.slice(2).reduce((a, b) => a + b, 0);
    console.log(`${k.padEnd(12)}${row.map((n) => String(n).padStart(8)).join('')}`);
  }
  for (const [key, list] of examples) {
    console.log(`\n${key}:`);
    for (const e of list) console.log(`  ${e}`);
  }
  console.log(`\nslowest: ${slowest.map((r) => `${r.kind} #${r.index} ${r.ms} ms`).join('; ')}`);
  process.exitCode = bad > 0 ? 1 : 0;
}

if (process.argv.includes('--worker')) void worker();
else void main().catch((err: unknown) => { console.error(err); process.exit(2); });
