import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MODEL_SIDE_FILES, writeModelFolder } from '../../src/io/model-folder.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-model-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('writeModelFolder: the one writer of a model folder (quantize, export --merged)', () => {
  const base = path.join(tmp, 'base');
  fs.mkdirSync(base);
  for (const f of ['tokenizer.json', 'merges.txt', 'README.md', 'model.safetensors']) fs.writeFileSync(path.join(base, f), `${f} of the base`);

  it('writes the weights, config.json and every side file the base has, and nothing else of the base', async () => {
    const out = path.join(tmp, 'out');
    const { weights, copied } = await writeModelFolder(out, base, '{"model_type": "rwkv"}\n', async (dir) => {
      fs.writeFileSync(path.join(dir, 'model.safetensors'), 'new weights');
      return 42;
    });
    expect(weights).toBe(42);
    expect(copied).toEqual(MODEL_SIDE_FILES.filter((f) => f === 'tokenizer.json' || f === 'merges.txt'));
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'merges.txt', 'model.safetensors', 'tokenizer.json']);
    expect(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')).toBe('tokenizer.json of the base');
    expect(fs.readFileSync(path.join(out, 'model.safetensors'), 'utf8')).toBe('new weights');
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe('{"model_type": "rwkv"}\n');
  });

  it('leaves no folder when the weights cannot be written', async () => {
    const out = path.join(tmp, 'failed');
    await expect(writeModelFolder(out, base, '{}', () => Promise.reject(new Error('disk on fire')))).rejects.toThrow('disk on fire');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('failed'))).toEqual([]);
  });
});
