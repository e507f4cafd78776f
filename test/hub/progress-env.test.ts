import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { hubSettings } from '../../src/hub/env.js';
import { consoleProgress, formatBytes, formatDuration } from '../../src/hub/progress.js';
import { checkRevision, repoIdProblem } from '../../src/hub/repo.js';
import { repoFolderName } from '../../src/hub/cache.js';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) { super(); }
  columns = 120;
  override _write(chunk: Buffer, _enc: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

describe('progress', () => {
  it('prints one plain line per large file when stderr is not a TTY', () => {
    const out = new Capture(false);
    let t = 0;
    const p = consoleProgress({ stream: out, minBytes: 1000, now: () => t });
    const small = p.file('config.json', 500, 0);
    small.update(500);
    small.finish();
    const big = p.file('model.safetensors', 4 * 2 ** 20, 2 ** 20);
    t = 2000;
    big.update(4 * 2 ** 20);
    big.finish();
    expect(out.text).toBe('downloaded model.safetensors: 4.0 MiB in 2s (1.5 MiB/s) (resumed at 1.0 MiB)\n');
  });

  it('draws a bar with name, bytes done/total, bytes/s and ETA on a TTY', () => {
    const out = new Capture(true);
    let t = 0;
    const p = consoleProgress({ stream: out, minBytes: 1, bars: true, now: () => t });
    const f = p.file('model-00001-of-00002.safetensors', 10 * 2 ** 20, 0);
    t = 1000;
    f.update(2 * 2 ** 20);
    f.finish();
    expect(out.text).toContain('model-00001-of-00002.safetensors');
    // drawing is rate-limited, so the first and the final state are what is certain to be drawn
    expect(out.text).toMatch(/\| +0% 0 B\/10\.0 MiB 0 B\/s ETA \?/);
    expect(out.text).toMatch(/\| 100% 10\.0 MiB\/10\.0 MiB 10\.0 MiB\/s ETA 0s/);
  });

  it('formats sizes and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(28 * 2 ** 30)).toBe('28.0 GiB');
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3 * 3600 + 120)).toBe('3h02m');
    expect(formatDuration(Infinity)).toBe('?');
  });
});

describe('hub settings from the environment', () => {
  it('has Python huggingface_hub defaults', () => {
    const s = hubSettings({ HOME: '/home/u' } as NodeJS.ProcessEnv);
    expect(s.home).toBe(path.join(os.homedir(), '.cache', 'huggingface'));
    expect(s.cacheDir).toBe(path.join(s.home, 'hub'));
    expect(s.endpoint).toBe('https://huggingface.co');
    expect(s.offline).toBe(false);
    const x = hubSettings({ XDG_CACHE_HOME: '/xdg' });
    expect(x.cacheDir).toBe('/xdg/huggingface/hub');
  });

  it('reads HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE and the token file', async () => {
    const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'ditty-env-'));
    try {
      await fsp.writeFile(path.join(home, 'token'), 'hf_from_file\n');
      const s = hubSettings({ HF_HOME: home, HF_ENDPOINT: 'http://mirror.local/', HF_HUB_OFFLINE: 'TRUE' });
      expect(s.cacheDir).toBe(path.join(home, 'hub'));
      expect(s.token).toBe('hf_from_file');
      expect(s.tokenSource).toBe(path.join(home, 'token'));
      expect(s.endpoint).toBe('http://mirror.local');
      expect(s.offline).toBe(true);
      const t = hubSettings({ HF_HOME: home, HF_TOKEN: 'hf_env', HF_HUB_CACHE: '/c', HF_HUB_OFFLINE: '0' });
      expect([t.token, t.tokenSource, t.cacheDir, t.offline]).toEqual(['hf_env', 'HF_TOKEN', '/c', false]);
      expect(hubSettings({ HF_HOME: path.join(home, 'none') }).token).toBeUndefined();
    } finally {
      await fsp.rm(home, { recursive: true, force: true });
    }
  });
});

describe('repo ids and cache names', () => {
  it('validates like Python and names cache folders like it', () => {
    expect(repoIdProblem('EleutherAI/pythia-70m')).toBeUndefined();
    expect(repoIdProblem('gpt2')).toBeUndefined();
    expect(repoIdProblem('a/b/c')).toMatch(/expected "org\/name"/);
    expect(repoIdProblem('-a/b')).toMatch(/expected/);
    expect(repoIdProblem('a/b.git')).toMatch(/\.git/);
    expect(repoFolderName({ type: 'model', name: 'RWKV/rwkv-4-169m-pile' })).toBe('models--RWKV--rwkv-4-169m-pile');
    expect(repoFolderName({ type: 'dataset', name: 'databricks/databricks-dolly-15k' })).toBe('datasets--databricks--databricks-dolly-15k');
    expect(checkRevision('refs/pr/1')).toBe('refs/pr/1');
    expect(() => checkRevision('../x')).toThrow(/not a valid revision/);
  });
});
