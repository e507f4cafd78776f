/**
 * A lock per blob download, shared with Python huggingface_hub: it holds `fcntl.flock(LOCK_EX)` on
 * `<cache>/.locks/<repo folder>/<etag>.lock` (the filelock package) while it writes that blob.
 * Node has no flock(2), so the lock is held by a `flock(1)` child (util-linux) on the same file:
 * the same kind of lock, so ditty and Python processes exclude each other. The child holds it until
 * its stdin closes, which also happens when ditty is killed, so a crash never leaves it held.
 *
 * Without flock(1) (not Linux), an O_CREAT|O_EXCL file `<etag>.lock.ditty` holding pid and start
 * time is used instead, taken over when its process is gone: ditty processes exclude each other, but
 * not Python ones (which never look at that file).
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { makeFolder } from '../io/make-folder.js';
import { processStartTime, processState } from '../io/process-state.js';
import { sleep } from './http.js';

/** Runs `fn` holding the exclusive lock on `lockFile`; `onWait` is called once if another process holds it. */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, opts: { signal?: AbortSignal; onWait?: () => void } = {}): Promise<T> {
  await makeFolder(path.dirname(lockFile));
  const release = await flockChild(lockFile, opts).catch(async (err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return exclusiveFile(`${lockFile}.ditty`, opts);
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

type Release = () => Promise<void>;

/** Holds flock(1) on `lockFile` in a child; resolves once it is held. */
function flockChild(lockFile: string, opts: { signal?: AbortSignal; onWait?: () => void }): Promise<Release> {
  return new Promise<Release>((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let held = false;
    let stderr = '';
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    const waitNote = setTimeout(() => { if (!held) opts.onWait?.(); }, 200);
    const onAbort = () => { child.kill('SIGKILL'); reject(opts.signal!.reason as Error); };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => { clearTimeout(waitNote); opts.signal?.removeEventListener('abort', onAbort); reject(err); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      if (held || !d.toString().includes('locked')) return;
      held = true;
      clearTimeout(waitNote);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(async () => {
        child.stdin.end();
        await exited;
      });
    });
    child.once('close', (code) => {
      clearTimeout(waitNote);
      opts.signal?.removeEventListener('abort', onAbort);
      if (!held) reject(Object.assign(new Error(`cannot lock ${lockFile}: flock exited ${code}${stderr ? `: ${stderr.trim()}` : ''}`), { code: 'ELOCK' }));
    });
  });
}

async function exclusiveFile(file: string, opts: { signal?: AbortSignal; onWait?: () => void }): Promise<Release> {
  const me = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
  let waited = false;
  for (;;) {
    try {
      const fh = await fsp.open(file, 'wx');
      await fh.writeFile(me);
      await fh.close();
      return async () => { await fsp.rm(file, { force: true }); };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [pid, start] = (await fsp.readFile(file, 'utf8').catch(() => '')).trim().split(' ');
    const age = Date.now() - ((await fsp.stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
    // An unreadable holder (it died between creating and writing the file) is stale after a while.
    const stale = pid !== undefined && /^\d+$/.test(pid) ? processState(Number(pid), start || undefined) === 'gone' : age > 10_000;
    if (stale) {
      await fsp.rm(file, { force: true });
      continue;
    }
    if (!waited) { waited = true; opts.onWait?.(); }
    await sleep(250, opts.signal);
  }
}
