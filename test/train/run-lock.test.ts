/**
 * The run folder's lock against killed, zombie, exiting and reused-pid holders, and against
 * processes taking it over at the same moment. Holders are real processes running the built lock
 * (dist/, as the CLI tests use); the lock is taken in this process right after `kill -9`, while
 * this process's event loop is blocked, so the killed holder is still exiting or a zombie nobody
 * has reaped, as under a shell or npm that has not yet waited for it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../../src/io/process-state.js';
import { lockRunFolder, LOCK_FILE } from '../../src/train/run-lock.js';
import { REPO_ROOT } from '../helpers/shared.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-run-lock-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const built = path.join(REPO_ROOT, 'dist', 'src', 'train', 'run-lock.js');
const linux = fs.existsSync('/proc/self/stat');

/** A process that takes the lock of `dir`, prints "locked" (or "refused <message>") and holds it for `holdMs`. */
function holder(dir: string, holdMs = 600_000): ChildProcessByStdio<null, Readable, null> {
  const code = `const { lockRunFolder } = await import(${JSON.stringify(built)});
    try { lockRunFolder(${JSON.stringify(dir)}); console.log('locked'); setTimeout(() => {}, ${holdMs}); }
    catch (e) { console.log('refused ' + e.message); process.exitCode = 3; }`;
  return spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function firstLine(child: ChildProcessByStdio<null, Readable, null>): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', () => resolve(out.split('\n')[0] ?? ''));
  });
}

function state(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
  } catch {
    return 'gone';
  }
}

describe.skipIf(!fs.existsSync(built))('the run lock', () => {
  it('50 immediate restarts after kill -9 of the holder: none refused, while the holder is still exiting or a zombie', async () => {
    const dir = path.join(tmpRoot, 'restarts');
    const seen = new Map<string, number>();
    let refused = 0;
    for (let i = 0; i < 50; i++) {
      const h = holder(dir);
      expect(await firstLine(h)).toBe('locked');
      h.kill('SIGKILL');
      // from here until the next await this process does not reap the holder
      const st = state(h.pid!);
      seen.set(st, (seen.get(st) ?? 0) + 1);
      try {
        lockRunFolder(dir)();
      } catch {
        refused++;
      }
      if (h.exitCode === null && h.signalCode === null) await new Promise((resolve) => h.once('exit', resolve));
    }
    process.stderr.write(`run lock: 50 restarts right after kill -9, ${refused} refused; holder state at the restart: ${JSON.stringify(Object.fromEntries(seen))}\n`);
    expect(refused).toBe(0);
  }, 120_000);

  it.skipIf(!linux)('a lock naming a pid now used by another process is taken over; a live holder is refused after a short wait', async () => {
    const dir = path.join(tmpRoot, 'reused');
    fs.mkdirSync(dir, { recursive: true });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      // the pid is alive, but it started at another time than the lock says: not the holder
      fs.writeFileSync(path.join(dir, LOCK_FILE), `${other.pid} ${Number(processStartTime(other.pid!)) - 100}\n`);
      const t0 = Date.now();
      const release = lockRunFolder(dir);
      expect(Date.now() - t0).toBeLessThan(500);
      expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid} ${processStartTime(process.pid)}\n`);
      release();
      expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);

      // a lock in the old format (pid only) of a live process: refused, and the message says how to clear it
      fs.writeFileSync(path.join(dir, LOCK_FILE), `${other.pid}\n`);
      expect(() => lockRunFolder(dir)).toThrow(new RegExp(`another ditty train \\(pid ${other.pid}\\).*delete .*${LOCK_FILE}`));
    } finally {
      other.kill('SIGKILL');
    }

    const live = holder(dir);
    fs.rmSync(path.join(dir, LOCK_FILE), { force: true });
    expect(await firstLine(live)).toBe('locked');
    const t0 = Date.now();
    expect(() => lockRunFolder(dir)).toThrow(new RegExp(`another ditty train \\(pid ${live.pid}\\) is using this output folder`));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    live.kill('SIGKILL');
  });

  it('processes taking over a stale lock at the same moment: exactly one gets it', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = path.join(tmpRoot, `race-${round}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, LOCK_FILE), '999999999 1\n');
      const racers = [0, 1, 2].map(() => holder(dir, 4000));
      const lines = await Promise.all(racers.map(firstLine));
      expect(lines.filter((l) => l === 'locked'), lines.join(' | ')).toHaveLength(1);
      for (const r of racers) r.kill('SIGKILL');
    }
  }, 60_000);

  it('a lock file left empty (its writer killed between creating and writing it) is taken over once it is stale', () => {
    const dir = path.join(tmpRoot, 'empty');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, LOCK_FILE);
    fs.writeFileSync(file, '');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    lockRunFolder(dir)();
    expect(fs.existsSync(file)).toBe(false);
  });
});
