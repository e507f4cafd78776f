/**
 * File system failures on output paths are the user's to fix: train, quantize and export --merged
 * each fail with one line naming the path, the operation and the errno code, exit 1, print no stack
 * trace, never hang (an output folder under /proc), and leave what was already saved whole.
 * Read-only and full file systems are tiny tmpfs mounts in a private mount namespace (unshare -m),
 * permission denied is a read-only folder (for root: the command runs as nobody); where the
 * machine allows neither, those cases are skipped with the reason, and the fault hook's injected
 * ENOSPC still runs.
 */
import { spawn, spawnSync } from 'node:child_process';
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
const BIN = path.join(REPO_ROOT, 'bin', 'ditty.js');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-fs-failures-'));
// other users (the EACCES case runs as nobody) must reach the inputs in here
fs.chmodSync(tmpRoot, 0o755);
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

interface Result { status: number | null; stderr: string }

/** Runs `argv` without blocking this process (a blocked test worker misses vitest's heartbeats). */
function run(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; uid?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
    });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stderr }); });
  });
}

function ditty(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; mount?: { options: string; at: string } } = {}): Promise<Result> {
  const command = [process.execPath, BIN, ...args];
  // mount a tmpfs in a private mount namespace, then run the command there; the mount ends with it
  const argv = opts.mount === undefined ? command
    : ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"', 'sh', opts.mount.options, opts.mount.at, ...command];
  return run(argv, opts);
}

/** One `ditty: error:` line naming `where` (and the errno `code`), exit 1, no stack trace. */
function expectOneLine(r: Result, where: string, code?: string): void {
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('ditty: error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0]).toContain(where);
  if (code !== undefined) expect(errors[0]).toMatch(new RegExp(`: cannot [a-z ]+(?: to \\S+)?: .+ \\(${code}\\)$`));
}

const canMount = ((): boolean => {
  const at = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-mount-probe-'));
  const ok = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${at}`]).status === 0;
  fs.rmSync(at, { recursive: true, force: true });
  if (!ok) console.warn('SKIPPED: read-only and full file system cases: cannot mount a tmpfs in a private namespace here (unshare -m needs CAP_SYS_ADMIN)');
  return ok;
})();
const isRoot = process.getuid?.() === 0;
/** Root passes permission checks, so the EACCES case runs as nobody; without root, chmod is enough. */
const asOther = isRoot ? 65534 : undefined;

describe.skipIf(!fixture.present || !dolly.present)('file system failures on output paths', () => {
  let adapterRun: string;
  const commands = (out: string): Record<string, string[]> => ({
    'train': ['train', TINY, '--set', `output.dir=${out}`, '--set', 'training.max_steps=1'],
    'quantize': ['quantize', fixture.path, '--out', out],
    'export --merged': ['export', adapterRun, '--merged', out],
  });

  beforeAll(async () => {
    adapterRun = path.join(tmpRoot, 'adapter-run');
    const r = await ditty(['train', TINY, '--set', `output.dir=${adapterRun}`, '--set', 'training.max_steps=1']);
    expect(r.status, r.stderr).toBe(0);
  });

  it('a file where a folder is expected (ENOTDIR), a file in the way of the run folder (EEXIST)', async () => {
    const file = path.join(tmpRoot, 'a-file');
    fs.writeFileSync(file, 'x');
    for (const [name, args] of Object.entries(commands(path.join(file, 'out')))) {
      expectOneLine(await ditty(args), path.join(file, 'out'), 'ENOTDIR');
      expect(fs.readFileSync(file, 'utf8'), name).toBe('x');
    }
    expectOneLine(await ditty(commands(file).train!), file, 'EEXIST');
  });

  it('an output folder under /proc fails at once, never hangs', async () => {
    for (const args of Object.values(commands('/proc/ditty-no-such/out'))) {
      const t0 = Date.now();
      expectOneLine(await ditty(args), '/proc/ditty-no-such', 'ENOENT');
      expect(Date.now() - t0).toBeLessThan(60_000);
    }
  });

  it('a folder the user may not write to (EACCES)', async () => {
    const ro = path.join(tmpRoot, 'read-only');
    fs.mkdirSync(ro, { mode: 0o555 });
    fs.chmodSync(ro, 0o555);
    for (const args of Object.values(commands(path.join(ro, 'out')))) {
      expectOneLine(await ditty(args, asOther !== undefined ? { uid: asOther } : {}), ro, 'EACCES');
    }
    expect(fs.readdirSync(ro)).toEqual([]);
  });

  it.skipIf(!canMount)('a read-only file system (EROFS); a run already saved there stays whole', async () => {
    const at = path.join(tmpRoot, 'rofs');
    fs.mkdirSync(at);
    for (const args of Object.values(commands(path.join(at, 'out')))) {
      expectOneLine(await ditty(args, { mount: { options: 'ro,size=1m', at } }), at, 'EROFS');
    }
    // train one step, make the file system read-only, then ask for more: refused, and the saved run is intact
    const copy = path.join(tmpRoot, 'rofs-copy');
    const script = `set -e
      mount -t tmpfs -o size=2m tmpfs ${at}
      ${process.execPath} ${BIN} train ${TINY} --set output.dir=${at}/run --set training.max_steps=1 >/dev/null 2>&1
      mount -o remount,ro ${at}
      set +e
      ${process.execPath} ${BIN} train ${TINY} --set output.dir=${at}/run --set training.max_steps=3 >/dev/null 2>${tmpRoot}/rofs-err
      echo $? > ${tmpRoot}/rofs-status
      cp -a ${at}/run ${copy}`;
    expect((await run(['unshare', '-m', 'sh', '-c', script])).status).toBe(0);
    expectOneLine({ status: Number(fs.readFileSync(path.join(tmpRoot, 'rofs-status'), 'utf8')), stderr: fs.readFileSync(path.join(tmpRoot, 'rofs-err'), 'utf8') },
      `${at}/run`, 'EROFS');
    expect(listCheckpoints(copy).map((c) => c.step)).toEqual([1]);
    expect(checkpointProblem(path.join(copy, 'checkpoint-1'))).toBeUndefined();
  });

  it.skipIf(!canMount)('a full file system (ENOSPC): one line, the checkpoints saved before it stay whole, nothing half-written', async () => {
    const at = path.join(tmpRoot, 'full');
    fs.mkdirSync(at);
    const copy = path.join(tmpRoot, 'full-copy');
    // room for about one checkpoint of the tiny model: the second save fills the disk
    const script = `mount -t tmpfs -o size=400k tmpfs ${at}
      ${process.execPath} ${BIN} train ${TINY} --set output.dir=${at}/run --set training.max_steps=6 --set output.checkpoint_every=1 --set output.keep_last=0 >/dev/null 2>${tmpRoot}/full-err
      echo $? > ${tmpRoot}/full-status
      cp -a ${at}/run ${copy}`;
    expect((await run(['unshare', '-m', 'sh', '-c', script])).status).toBe(0);
    expectOneLine({ status: Number(fs.readFileSync(path.join(tmpRoot, 'full-status'), 'utf8')), stderr: fs.readFileSync(path.join(tmpRoot, 'full-err'), 'utf8') },
      `${at}/run`, 'ENOSPC');
    expect(listCheckpoints(copy).length).toBeGreaterThan(0);
    for (const c of listCheckpoints(copy)) expect(checkpointProblem(c.dir)).toBeUndefined();
    expect(fs.readdirSync(copy).filter((f) => f.startsWith('.checkpoint-'))).toEqual([]);
    const { train: _, ...writers } = commands(path.join(at, 'out'));
    for (const args of Object.values(writers)) expectOneLine(await ditty(args, { mount: { options: 'size=64k', at } }), at, 'ENOSPC');
  });

  it('ENOSPC injected at a checkpoint write (the fault hook): one line naming the file; the earlier checkpoint stays and resumes', async () => {
    const dir = path.join(tmpRoot, 'injected');
    const args = ['train', TINY, '--set', `output.dir=${dir}`, '--set', 'training.max_steps=3', '--set', 'output.checkpoint_every=1', '--set', 'output.keep_last=0'];
    const r = await ditty(args, { env: { DITTY_FAULT_AT: '3:ENOSPC', DITTY_FAULT_MATCH: 'checkpoint-2' } });
    expectOneLine(r, `${dir}/.checkpoint-2.tmp-`, 'ENOSPC');
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([1]);
    expect(checkpointProblem(path.join(dir, 'checkpoint-1'))).toBeUndefined();
    const again = await ditty(args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/resumed from .*checkpoint-1 at step 1\/3/);
  });
});
