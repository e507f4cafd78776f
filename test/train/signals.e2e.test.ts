/**
 * SIGINT and SIGTERM reach `ditty train` however it was started (directly, through `npx ditty`,
 * as a process group) and stop it cleanly with a line saying what was saved; a second signal
 * stops it at once. Real processes, the tiny config.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { listCheckpoints } from '../../src/runtime/run-folder.js';
import { checkpointProblem } from '../../src/train/checkpoint.js';
import { LOCK_FILE } from '../../src/train/run-lock.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-signals-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

type Child = ChildProcessByStdio<null, Readable, Readable>;

interface Run {
  child: Child;
  out: () => string;
  err: () => string;
  /** resolves when stdout and stderr are closed: every process holding them (ditty under npx too) has exited */
  closed: Promise<number | null>;
  waitFor: (pattern: RegExp, where: 'out' | 'err') => Promise<void>;
}

function trainArgs(dir: string, sets: readonly string[]): string[] {
  return ['train', TINY, '--set', `output.dir=${dir}`, '--set', 'training.log_every=1', '--set', 'output.checkpoint_every=1000',
    ...sets.flatMap((s) => ['--set', s])];
}

function start(command: string, args: readonly string[], opts: { cwd?: string; detached?: boolean } = {}): Run {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT, detached: opts.detached ?? false, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_offline: 'true', npm_config_yes: 'false' },
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const poke = (): void => { for (const w of waiters.splice(0)) w(); };
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; poke(); });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; poke(); });
  let open = 2;
  const closed = new Promise<number | null>((resolve) => {
    const done = (): void => { if (--open === 0) resolve(child.exitCode); };
    child.stdout.on('close', done);
    child.stderr.on('close', done);
  });
  const waitFor = (pattern: RegExp, where: 'out' | 'err'): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (pattern.test(where === 'out' ? out : err)) resolve();
      else if (open === 0) reject(new Error(`${pattern} never came; stdout:\n${out}\nstderr:\n${err}`));
      else waiters.push(check);
    };
    void closed.then(() => poke());
    check();
  });
  return { child, out: () => out, err: () => err, closed, waitFor };
}

const ditty = (dir: string, ...sets: string[]): Run => start(process.execPath, [path.join(REPO_ROOT, 'bin/ditty.js'), ...trainArgs(dir, sets)]);

function exitOf(run: Run): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) resolve({ code: run.child.exitCode, signal: run.child.signalCode });
    else run.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** A clean stop: one line per event, no stack trace, no lock left behind, every checkpoint whole. */
function expectClean(dir: string, err: string): void {
  expect(err).not.toMatch(/internal error|\n\s+at /);
  expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  for (const c of listCheckpoints(dir)) expect(checkpointProblem(c.dir)).toBeUndefined();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!fixture.present || !dolly.present)('signals during ditty train', () => {
  it('SIGINT before the first step stops at once and says nothing was trained', async () => {
    const dir = path.join(tmpRoot, 'before');
    // long samples before the first step (4 prompts x 4000 tokens: tens of seconds) keep the run in its
    // setup phase however late a busy machine lets this test send the signal (without them training
    // starts within a second of the data statistics); a signal during the samples stops at once too
    const run = ditty(dir, 'training.max_steps=5', 'eval.max_new_tokens=4000');
    // the data statistics come after the run folder is locked and before the model loads
    await run.waitFor(/blocks of 64/, 'err');
    run.child.kill('SIGINT');
    expect(await exitOf(run)).toEqual({ code: 130, signal: null });
    await run.closed;
    expect(run.err()).toMatch(/^SIGINT before the first step: stopped; nothing was trained or saved$/m);
    expect(listCheckpoints(dir)).toEqual([]);
    expectClean(dir, run.err());
  });

  it('one SIGTERM during training finishes the step, saves a checkpoint and says which', async () => {
    const dir = path.join(tmpRoot, 'during');
    const run = ditty(dir, 'training.max_steps=200');
    await run.waitFor(/^step 1\/200/m, 'out');
    run.child.kill('SIGTERM');
    expect(await exitOf(run)).toEqual({ code: 143, signal: null });
    await run.closed;
    const m = /^SIGTERM: stopped at step (\d+) of 200; the last complete checkpoint is (.+checkpoint-(\d+)); run the same command to resume$/m.exec(run.err());
    expect(m, run.err()).not.toBeNull();
    expect(m![3]).toBe(m![1]);
    expect(listCheckpoints(dir).map((c) => c.dir)).toEqual([m![2]]);
    expect(run.out()).toMatch(/stopped early by SIGTERM/);
    expectClean(dir, run.err());
  });

  it('a second SIGINT stops at once, during a step, leaving only whole checkpoints', async () => {
    const dir = path.join(tmpRoot, 'twice');
    // long steps (1000 micro-batches: seconds even on an idle machine, where 100 took under the
    // 1 s between the signals), so that the second signal comes before the first one's stop
    const run = ditty(dir, 'training.max_steps=3', 'training.grad_accum=1000');
    await run.waitFor(/^step 1\/3/m, 'out');
    await sleep(300);
    run.child.kill('SIGINT');
    await run.waitFor(/^SIGINT: finishing this step/m, 'err');
    await sleep(700);
    const t0 = Date.now();
    run.child.kill('SIGINT');
    expect(await exitOf(run)).toEqual({ code: 130, signal: null });
    expect(Date.now() - t0).toBeLessThan(5000);
    await run.closed;
    expect(run.err()).toMatch(/^SIGINT again: stopping now; no checkpoint was saved$/m);
    expect(run.out()).not.toMatch(/^step 2\/3/m);
    expectClean(dir, run.err());
  });

  describe('started through npx', () => {
    // a package whose node_modules/.bin holds ditty, as after `npm install ditty`: npx runs it without installing anything
    const pkg = path.join(tmpRoot, 'pkg');
    fs.mkdirSync(path.join(pkg, 'node_modules', '.bin'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"name": "uses-ditty", "version": "1.0.0", "private": true}\n');
    fs.symlinkSync(path.join(REPO_ROOT, 'bin', 'ditty.js'), path.join(pkg, 'node_modules', '.bin', 'ditty'));
    const npx = (dir: string): Run => start('npx', ['--no', 'ditty', ...trainArgs(dir, ['training.max_steps=200'])], { cwd: pkg, detached: true });

    it('SIGTERM to the npx process (which exits at once and passes nothing on) stops the trainer cleanly', async () => {
      const dir = path.join(tmpRoot, 'npx-term');
      const run = npx(dir);
      try {
        await run.waitFor(/^step 1\/200/m, 'out');
        run.child.kill('SIGTERM');
        await exitOf(run);
        // the trainer, a grandchild of npx, holds stdout and stderr until it exits
        await Promise.race([run.closed, sleep(60_000).then(() => { throw new Error(`the trainer kept running:\n${run.err()}`); })]);
      } finally {
        try { process.kill(-run.child.pid!, 'SIGKILL'); } catch { /* all gone */ }
      }
      expect(run.err()).toMatch(/^the npm process that started ditty \(pid \d+\) has exited; stopping as for SIGTERM$/m);
      expect(run.err()).toMatch(/^SIGTERM: stopped at step \d+ of 200; the last complete checkpoint is .+checkpoint-\d+; run the same command to resume$/m);
      expect(listCheckpoints(dir)).toHaveLength(1);
      expectClean(dir, run.err());
    });

    it('SIGINT to the whole process group (Ctrl-C) stops the trainer once, cleanly', async () => {
      const dir = path.join(tmpRoot, 'npx-group');
      const run = npx(dir);
      try {
        await run.waitFor(/^step 1\/200/m, 'out');
        process.kill(-run.child.pid!, 'SIGINT');
        await Promise.race([run.closed, sleep(60_000).then(() => { throw new Error(`the trainer kept running:\n${run.err()}`); })]);
      } finally {
        try { process.kill(-run.child.pid!, 'SIGKILL'); } catch { /* all gone */ }
      }
      expect(run.err().match(/^SIGINT: finishing this step/gm)).toHaveLength(1);
      expect(run.err()).not.toMatch(/SIGINT again/);
      expect(run.err()).toMatch(/^SIGINT: stopped at step \d+ of 200; the last complete checkpoint is .+checkpoint-\d+/m);
      expect(listCheckpoints(dir)).toHaveLength(1);
      expectClean(dir, run.err());
    });
  });
});
