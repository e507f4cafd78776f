import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withBuildLock } from '../../scripts/native-toolchain.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-build-lock-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the build lock the emulated builds share', () => {
  it('runs one holder at a time and releases the lock after a failure', async () => {
    const lock = path.join(tmp, 'serial');
    const order: string[] = [];
    const job = (name: string) => withBuildLock(lock, async () => {
      order.push(`${name} in`);
      await new Promise((r) => setTimeout(r, 50));
      order.push(`${name} out`);
    });
    await Promise.all([job('a'), job('b')]);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out']);
    await expect(withBuildLock(lock, async () => { throw new Error('build failed'); })).rejects.toThrow('build failed');
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose owner is gone, or that never got its pid', async () => {
    const dead = path.join(tmp, 'dead');
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, 'pid'), '999999999');
    expect(await withBuildLock(dead, async () => 'ran')).toBe('ran');
    const pidless = path.join(tmp, 'pidless');
    fs.mkdirSync(pidless);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(pidless, old, old);
    expect(await withBuildLock(pidless, async () => 'ran')).toBe('ran');
  });
});
