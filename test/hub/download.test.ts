import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadModel, downloadRepoFiles, resolveModelFolder } from '../../src/hub/download.js';
import { InputError } from '../../src/io/errors.js';
import { etagOf, FakeHub, type FakeFile } from './fake-hub.js';

const COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const COMMIT_DEV = 'ffeeddccbbaa99887766554433221100ffeeddcc';
const COMMIT_BIN = '0123456789abcdef0123456789abcdef01234567';
const COMMIT_DATA = '1111111111222222222233333333334444444444';
const COMMIT_PRIV = '5555555555666666666677777777778888888888';

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff));
const json = (o: unknown) => Buffer.from(JSON.stringify(o, null, 2));

const shardIndex = (ext: string) => json({
  metadata: { total_size: 3000 },
  weight_map: {
    'gpt_neox.embed_in.weight': `model-00001-of-00002.${ext}`,
    'gpt_neox.layers.0.attention.dense.weight': `model-00001-of-00002.${ext}`,
    'embed_out.weight': `model-00002-of-00002.${ext}`,
  },
});

const TINY: FakeFile[] = [
  { path: 'config.json', content: json({ model_type: 'gpt_neox', hidden_size: 8 }) },
  { path: 'tokenizer.json', content: json({ version: '1.0', model: { type: 'BPE' } }) },
  { path: 'model.safetensors.index.json', content: shardIndex('safetensors') },
  { path: 'model-00001-of-00002.safetensors', content: bytes(200_003, 1) },
  { path: 'model-00002-of-00002.safetensors', content: bytes(1000, 2) },
  { path: 'flax_model.msgpack', content: bytes(5000, 3) },
  { path: 'README.md', content: Buffer.from('# tiny\n') },
];
const TINY_DEV: FakeFile[] = [
  { path: 'config.json', content: json({ model_type: 'gpt_neox', hidden_size: 16 }) },
  { path: 'model.safetensors', content: bytes(3000, 4) },
  { path: 'tokenizer_config.json', content: json({ eos_token: '<|endoftext|>' }) },
];
const BIN: FakeFile[] = [
  { path: 'config.json', content: json({ model_type: 'rwkv' }) },
  { path: 'pytorch_model.bin.index.json', content: shardIndex('bin') },
  { path: 'model-00001-of-00002.bin', content: bytes(1500, 5) },
  { path: 'model-00002-of-00002.bin', content: bytes(1500, 6) },
  { path: 'special_tokens_map.json', content: json({ eos_token: '<|endoftext|>' }) },
  { path: 'docs/notes.txt', content: Buffer.from('not needed') },
];
const DOLLY: FakeFile[] = [
  { path: 'databricks-dolly-15k.jsonl', content: Buffer.from('{"instruction":"a","context":"","response":"b","category":"open_qa"}\n'.repeat(50)) },
  { path: 'README.md', content: Buffer.from('# dolly\n') },
];
const PRIV: FakeFile[] = [
  { path: 'config.json', content: json({ model_type: 'gpt_neox' }) },
  { path: 'model.safetensors', content: bytes(4000, 7) },
];

const ENV_KEYS = [
  'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH',
  'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'XDG_CACHE_HOME', 'HF_HUB_DOWNLOAD_TIMEOUT', 'HF_HUB_ETAG_TIMEOUT',
];

let hub: FakeHub;
let home: string;
let saved: Record<string, string | undefined>;

const COMMIT_ODD = 'e'.repeat(40);
const CONFIG: FakeFile = { path: 'config.json', content: Buffer.from('{}') };
const indexNaming = (shard: string): FakeFile => ({
  path: 'model.safetensors.index.json', content: Buffer.from(JSON.stringify({ weight_map: { w: shard } })),
});

function makeHub(): FakeHub {
  return new FakeHub([
    { type: 'model', name: 'ditty-test/tiny-model', refs: { main: COMMIT, dev: COMMIT_DEV }, commits: { [COMMIT]: TINY, [COMMIT_DEV]: TINY_DEV } },
    { type: 'model', name: 'ditty-test/bin-model', refs: { main: COMMIT_BIN }, commits: { [COMMIT_BIN]: BIN } },
    { type: 'dataset', name: 'ditty-test/tiny-dolly', refs: { main: COMMIT_DATA }, commits: { [COMMIT_DATA]: DOLLY } },
    { type: 'model', name: 'ditty-test/private-model', refs: { main: COMMIT_PRIV }, commits: { [COMMIT_PRIV]: PRIV }, private: true },
    { type: 'model', name: 'ditty-test/gated-model', refs: { main: COMMIT_PRIV }, commits: { [COMMIT_PRIV]: PRIV }, gated: true },
    { type: 'model', name: 'ditty-test/no-weights', refs: { main: COMMIT_ODD }, commits: { [COMMIT_ODD]: [CONFIG] } },
    { type: 'model', name: 'ditty-test/bad-index', refs: { main: COMMIT_ODD }, commits: { [COMMIT_ODD]: [CONFIG, indexNaming('model-00001-of-00002.safetensors')] } },
    { type: 'model', name: 'ditty-test/escaping-index', refs: { main: COMMIT_ODD }, commits: { [COMMIT_ODD]: [CONFIG, indexNaming('../../escape.safetensors')] } },
  ]);
}

beforeAll(() => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

beforeEach(async () => {
  for (const k of ENV_KEYS) delete process.env[k];
  home = await fsp.mkdtemp(path.join(os.tmpdir(), 'ditty-hub-'));
  process.env['HF_HOME'] = home;
  hub = makeHub();
  process.env['HF_ENDPOINT'] = await hub.start();
});
afterEach(async () => {
  await hub.stop();
  for (const k of ENV_KEYS) delete process.env[k];
  await fsp.rm(home, { recursive: true, force: true });
});

const cache = () => path.join(home, 'hub');
const storageOf = (folder: string) => path.join(cache(), folder);
const quiet = { progress: false as const, retries: 0 };

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

/** Every file of the snapshot is a relative symlink to ../../blobs/<etag> with the right bytes. */
async function expectSnapshot(storage: string, commit: string, files: FakeFile[]): Promise<void> {
  const snap = path.join(storage, 'snapshots', commit);
  expect(await listTree(snap)).toEqual(files.map((f) => f.path).sort());
  for (const f of files) {
    const p = path.join(snap, f.path);
    expect((await fsp.lstat(p)).isSymbolicLink()).toBe(true);
    const depth = f.path.split('/').length - 1;
    expect(await fsp.readlink(p)).toBe(`${'../'.repeat(depth + 2)}blobs/${etagOf(f)}`);
    expect(Buffer.compare(await fsp.readFile(p), f.content)).toBe(0);
  }
}

const pick = (files: FakeFile[], ...names: string[]) => names.map((n) => files.find((f) => f.path === n)!);

describe('resolveModelFolder against a hub', () => {
  it('fetches config, tokenizer and sharded safetensors into the Python cache layout, and nothing else', async () => {
    const folder = await resolveModelFolder('ditty-test/tiny-model', quiet);
    const storage = storageOf('models--ditty-test--tiny-model');
    expect(folder).toBe(path.join(storage, 'snapshots', COMMIT));

    expect((await fsp.readdir(storage)).sort()).toEqual(['blobs', 'refs', 'snapshots']);
    expect(await fsp.readdir(path.join(storage, 'refs'))).toEqual(['main']);
    expect(await fsp.readFile(path.join(storage, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(await fsp.readdir(path.join(storage, 'snapshots'))).toEqual([COMMIT]);
    const needed = pick(TINY, 'config.json', 'tokenizer.json', 'model.safetensors.index.json',
      'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors');
    await expectSnapshot(storage, COMMIT, needed);
    // blobs: exactly one per needed file, named by etag (git sha1 for small files, sha256 for LFS)
    expect((await fsp.readdir(path.join(storage, 'blobs'))).sort()).toEqual(needed.map(etagOf).sort());
    expect(etagOf(needed[0]!)).toMatch(/^[0-9a-f]{40}$/);
    expect(etagOf(needed[3]!)).toMatch(/^[0-9a-f]{64}$/);

    // the server never saw a request for the files ditty does not need
    expect(hub.requests('flax_model.msgpack')).toEqual([]);
    expect(hub.requests('README.md')).toEqual([]);
    // it used the revision API, the (paginated) tree API at the commit, and resolve at the commit
    expect(hub.requests('/api/models/ditty-test/tiny-model/revision/main').length).toBe(1);
    expect(hub.requests(`/api/models/ditty-test/tiny-model/tree/${COMMIT}`).length).toBeGreaterThan(1);
    expect(hub.requests(`/ditty-test/tiny-model/resolve/${COMMIT}/config.json`).length).toBe(1);
    for (const r of hub.requests('/resolve/')) expect(r.headers['accept-encoding']).toBe('identity');
  });

  it('serves a second run from the cache: offline, and with the hub stopped, without any request', async () => {
    const first = await resolveModelFolder('ditty-test/tiny-model', quiet);
    hub.log.length = 0;

    process.env['HF_HUB_OFFLINE'] = '1';
    expect(await resolveModelFolder('ditty-test/tiny-model', quiet)).toBe(first);
    expect(hub.log).toEqual([]);
    delete process.env['HF_HUB_OFFLINE'];

    await hub.stop();
    expect(await resolveModelFolder('ditty-test/tiny-model', quiet)).toBe(first);
    expect(hub.log).toEqual([]);
  });

  it('offline with something missing names the repo, revision and missing files', async () => {
    process.env['HF_HUB_OFFLINE'] = 'true';
    await expect(resolveModelFolder('ditty-test/tiny-model', quiet)).rejects.toThrow(
      /HF_HUB_OFFLINE is set.*no snapshot of ditty-test\/tiny-model for revision "main"/,
    );
    delete process.env['HF_HUB_OFFLINE'];
    const folder = await resolveModelFolder('ditty-test/tiny-model', quiet);
    await fsp.rm(path.join(folder, 'model-00002-of-00002.safetensors'));
    process.env['HF_HUB_OFFLINE'] = '1';
    const err = await resolveModelFolder('ditty-test/tiny-model', quiet).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/ditty-test\/tiny-model at revision "main".*lacks: model-00002-of-00002\.safetensors$/);
  });

  it('with the hub unreachable and the cache incomplete, says so', async () => {
    await hub.stop();
    await expect(resolveModelFolder('ditty-test/tiny-model', quiet)).rejects.toThrow(
      /cannot reach http:\/\/127\.0\.0\.1:\d+ .*no snapshot of ditty-test\/tiny-model/,
    );
  });

  it('falls back to pytorch_model.bin.index.json and its .bin shards', async () => {
    const folder = await resolveModelFolder('ditty-test/bin-model', quiet);
    const storage = storageOf('models--ditty-test--bin-model');
    expect(folder).toBe(path.join(storage, 'snapshots', COMMIT_BIN));
    await expectSnapshot(storage, COMMIT_BIN, pick(BIN, 'config.json', 'special_tokens_map.json',
      'pytorch_model.bin.index.json', 'model-00001-of-00002.bin', 'model-00002-of-00002.bin'));
    expect(hub.requests('notes.txt')).toEqual([]);
  });

  it('a branch other than main writes refs/<branch> and its own snapshot; a commit hash writes no ref', async () => {
    const dev = await resolveModelFolder('ditty-test/tiny-model', { ...quiet, revision: 'dev' });
    const storage = storageOf('models--ditty-test--tiny-model');
    expect(dev).toBe(path.join(storage, 'snapshots', COMMIT_DEV));
    expect(await fsp.readFile(path.join(storage, 'refs', 'dev'), 'utf8')).toBe(COMMIT_DEV);
    await expectSnapshot(storage, COMMIT_DEV, pick(TINY_DEV, 'config.json', 'tokenizer_config.json', 'model.safetensors'));

    const byHash = await resolveModelFolder('ditty-test/tiny-model', { ...quiet, revision: COMMIT });
    expect(byHash).toBe(path.join(storage, 'snapshots', COMMIT));
    expect(await fsp.readdir(path.join(storage, 'refs'))).toEqual(['dev']);
  });

  it('returns an existing local folder as is, without any request', async () => {
    const local = await fsp.mkdtemp(path.join(home, 'local-'));
    expect(await resolveModelFolder(local, quiet)).toBe(local);
    expect(hub.log).toEqual([]);
  });

  it('rejects what is neither a folder nor a repo id', async () => {
    await expect(resolveModelFolder('not a repo!', quiet)).rejects.toThrow(/neither an existing folder nor a Hugging Face repo id/);
    await expect(resolveModelFolder('./no/such/folder', quiet)).rejects.toThrow(/model folder .* does not exist/);
    await expect(resolveModelFolder('org--x/name', quiet)).rejects.toThrow(/"--"/);
    expect(hub.log).toEqual([]);
  });
});

describe('authentication and errors', () => {
  it('sends HF_TOKEN as a Bearer token on every request', async () => {
    process.env['HF_TOKEN'] = hub.token;
    const folder = await resolveModelFolder('ditty-test/private-model', quiet);
    expect(await fsp.readFile(path.join(folder, 'model.safetensors'))).toEqual(PRIV[1]!.content);
    // the CDN redirect is same-origin here, so the token follows it too
    expect(hub.log.length).toBeGreaterThan(3);
    for (const r of hub.log) expect(r.headers.authorization).toBe(`Bearer ${hub.token}`);
  });

  it('reads the token from $HF_HOME/token when HF_TOKEN is not set', async () => {
    await fsp.writeFile(path.join(home, 'token'), `${hub.token}\n`);
    await resolveModelFolder('ditty-test/private-model', quiet);
    for (const r of hub.log) expect(r.headers.authorization).toBe(`Bearer ${hub.token}`);
  });

  it('sends tokens that @huggingface/hub would reject (no hf_ prefix) itself', async () => {
    hub.token = 'api_org_abcdef';
    process.env['HF_TOKEN'] = hub.token;
    await resolveModelFolder('ditty-test/private-model', quiet);
    for (const r of hub.log) expect(r.headers.authorization).toBe('Bearer api_org_abcdef');
  });

  it('a 401 mentions HF_TOKEN', async () => {
    await expect(resolveModelFolder('ditty-test/private-model', quiet)).rejects.toThrow(
      /ditty-test\/private-model at revision "main".*HTTP 401.*set HF_TOKEN.*no token is set/,
    );
    process.env['HF_TOKEN'] = 'hf_wrong';
    await expect(resolveModelFolder('ditty-test/private-model', quiet)).rejects.toThrow(/HF_TOKEN.*a token from HF_TOKEN was sent/);
  });

  it('a gated repo says to accept its conditions and set HF_TOKEN', async () => {
    await expect(resolveModelFolder('ditty-test/gated-model', quiet)).rejects.toThrow(
      /ditty-test\/gated-model is a gated repo: accept its conditions at http:\/\/127\.0\.0\.1:\d+\/ditty-test\/gated-model.*HF_TOKEN/,
    );
  });

  it('a missing repo or revision is named', async () => {
    process.env['HF_TOKEN'] = hub.token;
    const err = await resolveModelFolder('ditty-test/nope', quiet).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/repository ditty-test\/nope not found at http:\/\/127\.0\.0\.1:\d+ \(revision "main"\)/);
    delete process.env['HF_TOKEN'];
    // anonymous: the hub answers 401 for a missing repo, so the message covers both cases
    await expect(resolveModelFolder('ditty-test/nope', quiet)).rejects.toThrow(/ditty-test\/nope at revision "main": repository not found/);
    await expect(resolveModelFolder('ditty-test/tiny-model', { ...quiet, revision: 'v9' })).rejects.toThrow(
      /revision "v9" not found in ditty-test\/tiny-model/,
    );
  });

  it('a repo without weights or with an index naming a missing shard is refused clearly', async () => {
    await expect(downloadRepoFiles({ ...quiet, repo: { type: 'model', name: 'ditty-test/tiny-model' }, files: ['nope.bin'] }))
      .rejects.toThrow(/ditty-test\/tiny-model at revision "main" has no nope\.bin/);
    await expect(resolveModelFolder('ditty-test/no-weights', quiet))
      .rejects.toThrow(/ditty-test\/no-weights at revision "main" has no model weights \(one of model\.safetensors, /);
    await expect(resolveModelFolder('ditty-test/bad-index', quiet))
      .rejects.toThrow(/ditty-test\/bad-index at revision "main" has no model-00001-of-00002\.safetensors/);
    await expect(resolveModelFolder('ditty-test/escaping-index', quiet)).rejects.toThrow(InputError);
    await expect(resolveModelFolder('ditty-test/escaping-index', quiet)).rejects.toThrow(/must be a file name inside the model folder/);
  });
});

describe('interrupted and corrupted downloads', () => {
  const SHARD = 'model-00001-of-00002.safetensors';
  const shard = TINY.find((f) => f.path === SHARD)!;
  const storage = () => storageOf('models--ditty-test--tiny-model');

  it('never leaves a partial file under the final name, and resumes with Range on the next run', async () => {
    hub.cutOnce.add(SHARD);
    const err = await resolveModelFolder('ditty-test/tiny-model', quiet).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(new RegExp(`download of ${SHARD} .*failed.*next run resumes`));

    const blob = path.join(storage(), 'blobs', etagOf(shard));
    await expect(fsp.stat(blob)).rejects.toThrow();
    await expect(fsp.lstat(path.join(storage(), 'snapshots', COMMIT, SHARD))).rejects.toThrow();
    const partial = (await fsp.stat(`${blob}.incomplete`)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(shard.content.length);

    hub.log.length = 0;
    const folder = await resolveModelFolder('ditty-test/tiny-model', quiet);
    expect(await fsp.readFile(path.join(folder, SHARD))).toEqual(shard.content);
    const gets = hub.requests(`/cdn-lfs/${etagOf(shard)}`);
    expect(gets.map((r) => [r.headers.range, r.status])).toEqual([[`bytes=${partial}-`, 206]]);
    await expect(fsp.stat(`${blob}.incomplete`)).rejects.toThrow();
    // files finished before the cut were not fetched again
    expect(hub.requests('resolve/').map((r) => path.basename(r.url))).toEqual([SHARD, 'model-00002-of-00002.safetensors']);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    hub.cutOnce.add(SHARD);
    await expect(resolveModelFolder('ditty-test/tiny-model', quiet)).rejects.toThrow(/failed/);
    hub.ranges = false;
    const folder = await resolveModelFolder('ditty-test/tiny-model', quiet);
    expect(await fsp.readFile(path.join(folder, SHARD))).toEqual(shard.content);
  });

  it('retries within one call, resuming', async () => {
    hub.cutOnce.add(SHARD);
    hub.cutOnce.add('config.json');
    const folder = await resolveModelFolder('ditty-test/tiny-model', { progress: false, retries: 2, retryDelayMs: 1 });
    expect(await fsp.readFile(path.join(folder, SHARD))).toEqual(shard.content);
    expect(await fsp.readFile(path.join(folder, 'config.json'))).toEqual(TINY[0]!.content);
    expect(hub.requests(`/cdn-lfs/${etagOf(shard)}`).map((r) => r.headers.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
  });

  it('refuses bytes whose hash does not match the listing, keeping nothing', async () => {
    hub.corrupt.add(SHARD);
    await expect(resolveModelFolder('ditty-test/tiny-model', quiet)).rejects.toThrow(/sha256 [0-9a-f]{64}, the hub lists/);
    const blob = path.join(storage(), 'blobs', etagOf(shard));
    await expect(fsp.stat(blob)).rejects.toThrow();
    await expect(fsp.stat(`${blob}.incomplete`)).rejects.toThrow();
    hub.corrupt.clear();
    await resolveModelFolder('ditty-test/tiny-model', quiet);
  });
});

describe('datasets and reuse of a Python-written cache', () => {
  it('downloads a dataset file into datasets--org--name', async () => {
    const res = await downloadRepoFiles({
      ...quiet,
      repo: { type: 'dataset', name: 'ditty-test/tiny-dolly' },
      files: ['databricks-dolly-15k.jsonl'],
    });
    const storage = storageOf('datasets--ditty-test--tiny-dolly');
    expect(res).toEqual({ folder: path.join(storage, 'snapshots', COMMIT_DATA), commit: COMMIT_DATA, files: ['databricks-dolly-15k.jsonl'], fromCache: false });
    await expectSnapshot(storage, COMMIT_DATA, pick(DOLLY, 'databricks-dolly-15k.jsonl'));
    expect(await fsp.readFile(path.join(storage, 'refs', 'main'), 'utf8')).toBe(COMMIT_DATA);
    expect(hub.requests('/api/datasets/ditty-test/tiny-dolly/revision/main')).toHaveLength(1);
    expect(hub.requests('/datasets/ditty-test/tiny-dolly/resolve/')).toHaveLength(1);
    expect(hub.requests('README.md')).toEqual([]);

    // at a commit hash, a complete cache answers without the hub
    hub.log.length = 0;
    const again = await downloadRepoFiles({ ...quiet, repo: { type: 'dataset', name: 'ditty-test/tiny-dolly' }, revision: COMMIT_DATA, files: ['databricks-dolly-15k.jsonl'] });
    expect(again.fromCache).toBe(true);
    expect(hub.log).toEqual([]);
  });

  it('reuses blobs and snapshots laid out by Python huggingface_hub', async () => {
    // what `hf_hub_download` leaves: blobs/<etag>, refs/main, snapshots/<commit>/<file> -> ../../blobs/<etag>
    const storage = storageOf('models--ditty-test--bin-model');
    await fsp.mkdir(path.join(storage, 'blobs'), { recursive: true });
    await fsp.mkdir(path.join(storage, 'refs'), { recursive: true });
    await fsp.mkdir(path.join(storage, 'snapshots', COMMIT_BIN), { recursive: true });
    await fsp.writeFile(path.join(storage, 'refs', 'main'), COMMIT_BIN);
    for (const f of BIN.slice(0, 3)) {
      await fsp.writeFile(path.join(storage, 'blobs', etagOf(f)), f.content);
      await fsp.symlink(`../../blobs/${etagOf(f)}`, path.join(storage, 'snapshots', COMMIT_BIN, f.path));
    }
    // a blob present without its snapshot link is linked, not downloaded
    const shard2 = BIN[3]!;
    await fsp.writeFile(path.join(storage, 'blobs', etagOf(shard2)), shard2.content);

    const res = await downloadModel('ditty-test/bin-model', quiet);
    expect(res.files).toEqual(['config.json', 'special_tokens_map.json', 'pytorch_model.bin.index.json', 'model-00001-of-00002.bin', 'model-00002-of-00002.bin']);
    expect(hub.requests('/resolve/').map((r) => path.basename(r.url))).toEqual(['special_tokens_map.json']);

    hub.log.length = 0;
    process.env['HF_HUB_OFFLINE'] = '1';
    const off = await downloadModel('ditty-test/bin-model', quiet);
    expect(off).toEqual({ ...res, fromCache: true });
    expect(hub.log).toEqual([]);
  });

  it('honours HF_HUB_CACHE over HF_HOME', async () => {
    const other = path.join(home, 'elsewhere');
    process.env['HF_HUB_CACHE'] = other;
    const folder = await resolveModelFolder('ditty-test/tiny-model', { ...quiet, revision: 'dev' });
    expect(folder).toBe(path.join(other, 'models--ditty-test--tiny-model', 'snapshots', COMMIT_DEV));
  });
});
