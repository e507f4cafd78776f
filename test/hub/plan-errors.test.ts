import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { hubSettings } from '../../src/hub/env.js';
import { cacheFallbackReason, downloadFailure, explainHttp } from '../../src/hub/errors.js';
import { HubHttpError, HubNetworkError } from '../../src/hub/http.js';
import { explicitPlan, modelFilePlan, NoWeightsError, type PlanSource } from '../../src/hub/plan.js';

/** A plan source over an in-memory repo. */
function repo(files: Record<string, string>): PlanSource {
  return { has: async (p) => p in files, read: async (p) => files[p]!, where: 'org/m@main' };
}

describe('the file plan', () => {
  it('takes config.json, the side files there are and the first weight layout there is', async () => {
    const files = { 'config.json': '{}', 'tokenizer.json': '{}', 'README.md': '', 'model.safetensors': '', 'pytorch_model.bin': '' };
    expect(await modelFilePlan(repo(files))).toEqual(['config.json', 'tokenizer.json', 'model.safetensors']);
  });

  it('follows an index to its shards, each once, and refuses a shard path outside the repo', async () => {
    const index = JSON.stringify({ weight_map: { a: 'model-1.safetensors', b: 'model-2.safetensors', c: 'model-1.safetensors' } });
    expect(await modelFilePlan(repo({ 'config.json': '{}', 'model.safetensors.index.json': index })))
      .toEqual(['config.json', 'model.safetensors.index.json', 'model-1.safetensors', 'model-2.safetensors']);
    const bad = JSON.stringify({ weight_map: { a: 'sub/./x.safetensors' } });
    await expect(modelFilePlan(repo({ 'model.safetensors.index.json': bad }))).rejects.toThrow('org/m@main/model.safetensors.index.json: "sub/./x.safetensors" is not a file path');
  });

  it('names the weight files it looked for when there are none', async () => {
    const plan = modelFilePlan(repo({ 'config.json': '{}' }));
    await expect(plan).rejects.toBeInstanceOf(NoWeightsError);
    await expect(modelFilePlan(repo({}))).rejects.toThrow('model weights (one of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)');
  });

  it('an explicit plan is the files asked for, each once; none, or a path leaving the repo, is refused', async () => {
    expect(await explicitPlan(['a.jsonl', 'b/c.txt', 'a.jsonl'])(repo({}))).toEqual(['a.jsonl', 'b/c.txt']);
    await expect(explicitPlan([])(repo({}))).rejects.toThrow('org/m@main: no files asked for');
    await expect(explicitPlan(['../x'])(repo({}))).rejects.toThrow(InputError);
  });
});

describe('hub failures as messages', () => {
  const target = { label: 'org/m', revision: 'main', settings: hubSettings({ HF_HOME: '/tmp/ditty-no-home' }) };
  const http = (status: number, code?: string) => new HubHttpError('https://huggingface.co/api/models/org/m', status, code, undefined);

  it('lets the cache serve when the hub is down, rate-limits or cannot be reached, not when it said no', () => {
    expect(cacheFallbackReason(http(503), 'https://hub')).toBe('https://hub answered HTTP 503');
    expect(cacheFallbackReason(http(429), 'https://hub')).toBe('https://hub answered HTTP 429');
    expect(cacheFallbackReason(new HubNetworkError('https://hub/x', 'ECONNREFUSED'), 'https://hub')).toBe('cannot reach https://hub (ECONNREFUSED)');
    expect(cacheFallbackReason(new TypeError('fetch failed'), 'https://hub')).toBe('cannot reach https://hub (fetch failed)');
    expect(cacheFallbackReason(http(404, 'RepoNotFound'), 'https://hub')).toBeUndefined();
    expect(cacheFallbackReason(new InputError('bad'), 'https://hub')).toBeUndefined();
  });

  it('says what to do, in one line', () => {
    for (const [status, code, text] of [
      [401, undefined, 'set HF_TOKEN'], [403, undefined, 'denied (HTTP 403)'], [404, 'RepoNotFound', 'repository org/m not found'],
      [403, 'GatedRepo', 'org/m is a gated repo'], [404, 'RevisionNotFound', 'revision "main" not found in org/m'], [500, undefined, 'answered HTTP 500'],
    ] as const) {
      const message = explainHttp(http(status, code), target).message;
      expect(message).toContain(text);
      expect(message).not.toContain('\n');
    }
    expect(explainHttp(http(404, 'EntryNotFound'), target, 'model.safetensors').message).toMatch(/^model\.safetensors not found in org\/m/);
    expect(downloadFailure(new Error('socket hang up'), target, 'w.bin', 10, '/c/w.incomplete').message)
      .toBe('download of w.bin from org/m (revision "main") failed: socket hang up; 10 bytes are kept in /c/w.incomplete and the next run resumes from there');
    expect(downloadFailure(new Error('x'), target, 'w.bin', 0, '/c/w.incomplete').message).not.toContain('kept');
  });
});
