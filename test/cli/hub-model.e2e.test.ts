import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHub } from '../hub/fake-hub.js';
import { runCli } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

describe.skipIf(!fixture.present)('ditty eval MODEL with a hub repo id', () => {
  let hub: FakeHub;
  let home: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const files = ['config.json', 'tokenizer.json', 'model.safetensors'].map((p) => ({
      path: p, content: fs.readFileSync(path.join(fixture.path, p)),
    }));
    files.push({ path: 'README.md', content: Buffer.from('# tiny rwkv\n') });
    hub = new FakeHub([{ type: 'model', name: 'ditty-test/tiny-rwkv', refs: { main: COMMIT }, commits: { [COMMIT]: files } }]);
    const endpoint = await hub.start();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-hf-home-'));
    env = { HF_HOME: home, HF_ENDPOINT: endpoint, HF_TOKEN: '', HF_HUB_OFFLINE: '' };
  });

  afterAll(async () => {
    await hub.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('downloads into the HF cache layout, then runs offline from it', async () => {
    const text = 'Who wrote the novel Moby-Dick?';
    const first = await runCli(['eval', 'ditty-test/tiny-rwkv', '--text', text, '--json'], env);
    expect(first.status, first.stderr).toBe(0);
    const repoDir = path.join(home, 'hub', 'models--ditty-test--tiny-rwkv');
    expect(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    const snapshot = path.join(repoDir, 'snapshots', COMMIT);
    expect(fs.readdirSync(snapshot).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(fs.lstatSync(path.join(snapshot, 'model.safetensors')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(snapshot, 'model.safetensors')).equals(fs.readFileSync(path.join(fixture.path, 'model.safetensors')))).toBe(true);
    expect(hub.log.some((r) => r.url.includes('README.md'))).toBe(false);

    const requestsBefore = hub.log.length;
    const offline = await runCli(['eval', 'ditty-test/tiny-rwkv', '--text', text, '--json'], { ...env, HF_HUB_OFFLINE: '1' });
    expect(offline.status, offline.stderr).toBe(0);
    expect(hub.log.length).toBe(requestsBefore);
    expect((JSON.parse(offline.stdout) as { loss: number }).loss).toBe((JSON.parse(first.stdout) as { loss: number }).loss);
  });

  it('says which repo is missing', async () => {
    const r = await runCli(['inspect', 'ditty-test/no-such-model'], env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ditty-test\/no-such-model/);
  });
});
