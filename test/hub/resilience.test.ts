import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadModel } from '../../src/hub/download.js';
import { retryAfterMs } from '../../src/hub/http.js';
import { InputError } from '../../src/io/errors.js';
import { etagOf, FakeHub, type FakeFile } from './fake-hub.js';

const COMMIT = 'c0ffee0000000000000000000000000000000001';
const REPO = 'ditty-test/small';
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff));
const FILES: FakeFile[] = [
  { path: 'config.json', content: Buffer.from('{"model_type": "gpt_neox"}') },
  { path: 'tokenizer.json', content: Buffer.from('{"model": {}}') },
  { path: 'model.safetensors', content: bytes(3_000_000, 1) },
];
const WEIGHTS = FILES[2]!;
const ENV_KEYS = ['HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_TOKEN', 'HF_HUB_OFFLINE', 'DITTY_HUB_DEADLINE'];

let hub: FakeHub;
let home: string;
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
beforeEach(async () => {
  for (const k of ENV_KEYS) delete process.env[k];
  home = await fsp.mkdtemp(path.join(os.tmpdir(), 'ditty-hubres-'));
  process.env['HF_HOME'] = home;
  hub = new FakeHub([{ type: 'model', name: REPO, refs: { main: COMMIT }, commits: { [COMMIT]: FILES } }]);
  process.env['HF_ENDPOINT'] = await hub.start();
});
afterEach(async () => {
  await hub.stop();
  await fsp.rm(home, { recursive: true, force: true });
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const quick = { progress: false as const, retries: 0, retryDelayMs: 10 };

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  return (err as Error).message;
}

describe('the hub failing: fall back to a complete cache, retry the transient', () => {
  it.each([500, 502, 503, 429])('HTTP %i from the metadata API with a complete cache: the cache serves', async (status) => {
    await downloadModel(REPO, quick);
    hub.failures.push({ match: '/api/models/', status, times: 100 });
    const again = await downloadModel(REPO, quick);
    expect(again.fromCache).toBe(true);
    expect(again.commit).toBe(COMMIT);
  });

  it('HTTP 503 without a cache says what the hub answered and what the cache lacks', async () => {
    hub.failures.push({ match: '/api/models/', status: 503, times: 100 });
    expect(await refusal(downloadModel(REPO, quick))).toMatch(/answered HTTP 503.*, and the cache .* has no snapshot of ditty-test\/small for revision "main"/);
  });

  it('one transient 500 on the metadata API is retried', async () => {
    hub.failures.push({ match: '/revision/', status: 500, times: 1 });
    const r = await downloadModel(REPO, { ...quick, retries: 3 });
    expect(r.fromCache).toBe(false);
    expect(hub.requests('/revision/').length).toBe(2);
  });

  it('a 503 on a file download is retried', async () => {
    hub.failures.push({ match: '/cdn-lfs/', status: 503, times: 1, retryAfter: '0' });
    const r = await downloadModel(REPO, { ...quick, retries: 2 });
    expect(Buffer.compare(await fsp.readFile(path.join(r.folder, 'model.safetensors')), WEIGHTS.content)).toBe(0);
  });

  it('Retry-After is honoured, and one beyond the cap is not waited for', async () => {
    hub.failures.push({ match: '/revision/', status: 429, retryAfter: '1', times: 1 });
    let t0 = Date.now();
    await downloadModel(REPO, { ...quick, retries: 3 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    hub.failures.push({ match: '/revision/', status: 429, retryAfter: '3600', times: 1 });
    t0 = Date.now();
    expect((await downloadModel(REPO, { ...quick, retries: 3 })).fromCache).toBe(true);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

describe('the hub misbehaving: loops and slowness end', () => {
  it('a tree listing whose Link: rel="next" loops is stopped', async () => {
    hub.pageSize = 1;
    hub.loopTree = true;
    expect(await refusal(downloadModel(REPO, quick))).toMatch(/file listing came back to a page it already gave .*Link: rel="next" loops/);
    expect(hub.requests('/tree/').length).toBeLessThan(5);
  });

  it('every command has an overall deadline', async () => {
    hub.apiDelayMs = 400;
    const t0 = Date.now();
    expect(await refusal(downloadModel(REPO, { ...quick, deadlineMs: 300 }))).toMatch(/fetching ditty-test\/small from .*: gave up after its deadline/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('the deadline also ends a slow download', async () => {
    hub.bytesDelayMs = 5000;
    expect(await refusal(downloadModel(REPO, { ...quick, retries: 3, deadlineMs: 1500 }))).toMatch(/gave up after its deadline/);
  });
});

/** Runs `code` (TypeScript, top-level await) in a separate node process through vite-node. */
function runTs(code: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const file = path.join(home, `child-${Math.random().toString(36).slice(2)}.ts`);
    void fsp.writeFile(file, code).then(() => {
      const child = spawn(path.resolve('node_modules/.bin/vite-node'), [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('close', (c) => resolve({ code: c, out }));
    });
  });
}

describe('a shared cache under concurrent use', () => {
  const lockFile = () => path.join(home, 'hub', '.locks', 'models--ditty-test--small', `${etagOf(WEIGHTS)}.lock`);

  it('two processes downloading the same blob: one downloads, the other waits and reuses it', async () => {
    hub.bytesDelayMs = 300; // keep the first download in flight while the second starts
    const code = `
import { downloadModel } from ${JSON.stringify(path.resolve('src/hub/download.ts'))};
const r = await downloadModel(${JSON.stringify(REPO)}, { retries: 0, progress: { file: () => ({ update() {}, finish() {}, abort() {} }), note: (m) => console.log('NOTE', m) } });
console.log('DONE', r.folder);
`;
    const [a, b] = await Promise.all([runTs(code, {}), runTs(code, {})]);
    expect(a.code, a.out).toBe(0);
    expect(b.code, b.out).toBe(0);
    const blob = path.join(home, 'hub', 'models--ditty-test--small', 'blobs', etagOf(WEIGHTS));
    expect(Buffer.compare(await fsp.readFile(blob), WEIGHTS.content)).toBe(0);
    expect(hub.requests(`/cdn-lfs/`).filter((r) => r.method === 'GET').length).toBe(1);
    expect(`${a.out}${b.out}`).toMatch(/NOTE model\.safetensors: another process is downloading it; waiting/);
    await fsp.access(lockFile());
  }, 120_000);

  it('waits for a Python process holding the same lock with fcntl.flock, as huggingface_hub takes it', async () => {
    await fsp.mkdir(path.dirname(lockFile()), { recursive: true });
    const py = spawn('python3', ['-c', `import fcntl, sys, time
f = open(sys.argv[1], 'w')
fcntl.flock(f, fcntl.LOCK_EX)
print('held', flush=True)
sys.stdin.read()`, lockFile()], { stdio: ['pipe', 'pipe', 'inherit'] });
    const pyExit = new Promise<number | null>((r) => py.once('exit', (c) => r(c)));
    await new Promise<void>((r) => py.stdout.once('data', () => r()));
    const notes: string[] = [];
    // Python lets go of the lock only once ditty has said that it waits for it.
    const r = await downloadModel(REPO, { ...quick, progress: { file: () => ({ update() {}, finish() {}, abort() {} }), note: (m) => { notes.push(m); py.stdin!.end(); } } });
    expect(notes).toEqual(['model.safetensors: another process is downloading it; waiting for it to finish']);
    expect(await pyExit).toBe(0);
    expect(Buffer.compare(await fsp.readFile(path.join(r.folder, 'model.safetensors')), WEIGHTS.content)).toBe(0);
  }, 60_000);
});
