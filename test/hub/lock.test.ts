/** The per-blob lock where flock(1) is missing: an O_EXCL `<lock>.ditty` file holding pid and start time. */
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../src/hub/lock.js';

let dir: string;
let lock: string;
const savedPath = process.env['PATH'];
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ditty-lock-'));
  lock = path.join(dir, 'locks', 'blob.lock');
  // No flock(1) on the PATH: spawning it fails with ENOENT, as on a system without util-linux.
  process.env['PATH'] = path.join(dir, 'empty');
});
afterEach(async () => {
  process.env['PATH'] = savedPath;
  await fsp.rm(dir, { recursive: true, force: true });
});

const exists = (p: string) => fsp.access(p).then(() => true, () => false);

/** A pid whose process has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('withFileLock without flock(1)', () => {
  it('holds <lock>.ditty while the work runs and removes it after', async () => {
    const held = await withFileLock(lock, async () => {
      const text = await fsp.readFile(`${lock}.ditty`, 'utf8');
      return text;
    });
    expect(held.split(' ')[0]).toBe(String(process.pid));
    expect(await exists(`${lock}.ditty`)).toBe(false);
  });

  it('removes <lock>.ditty when the work throws', async () => {
    await expect(withFileLock(lock, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await exists(`${lock}.ditty`)).toBe(false);
  });

  it('takes over a lock whose process is gone, without waiting', async () => {
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(`${lock}.ditty`, `${deadPid()} 1\n`);
    let waited = 0;
    expect(await withFileLock(lock, async () => 'ran', { onWait: () => { waited++; } })).toBe('ran');
    expect(waited).toBe(0);
  });

  it('waits for a live holder (saying so once) until it lets go', async () => {
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(`${lock}.ditty`, `${process.pid}\n`);
    let waited = 0;
    const done = withFileLock(lock, async () => 'ran', {
      onWait: () => {
        waited++;
        setTimeout(() => void fsp.rm(`${lock}.ditty`), 600);
      },
    });
    expect(await done).toBe('ran');
    expect(waited).toBe(1);
  });

  it('waits for an unreadable holder that is recent, and takes over one older than 10 s', async () => {
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(`${lock}.ditty`, '');
    const ac = new AbortController();
    let waited = 0;
    const recent = withFileLock(lock, async () => 'ran', { signal: ac.signal, onWait: () => { waited++; ac.abort(new Error('gave up')); } });
    await expect(recent).rejects.toThrow('gave up');
    expect(waited).toBe(1);
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(`${lock}.ditty`, old, old);
    expect(await withFileLock(lock, async () => 'ran')).toBe('ran');
  });
});
