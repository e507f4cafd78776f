import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, openWeightFile } from '../../src/io/checkpoint.js';
import { InputError, WeightFileError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { shardName, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/io/safetensors-writer.js';
import type { TensorSource } from '../../src/io/tensor-source.js';
import { TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';
import { torchSaveStateDict, type SimpleTensor } from '../helpers/torch-save.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.resolve(repoRoot, '../shared/fixtures');
const MODELS = ['tiny-rwkv', 'tiny-neox-parallel', 'tiny-neox-sequential'];
const haveFixtures = MODELS.every((m) => fs.existsSync(path.join(fixtures, m, 'model.safetensors')));
if (!haveFixtures) console.warn(`SKIP: fixture models not found under ${fixtures}; the torch .bin round trips are skipped`);

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-ckpt-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

function folder(name: string): string {
  const f = path.join(dir, name);
  fs.mkdirSync(f, { recursive: true });
  return f;
}

/** Every tensor of `expected` is in `actual`, in the same order, with identical dtype, shape and bytes. */
function expectSameTensors(actual: TensorSource, expected: TensorSource): void {
  expect(actual.names()).toEqual(expected.names());
  for (const name of expected.names()) {
    expect(actual.info(name)).toEqual(expected.info(name));
    expect(Buffer.from(actual.readBytes(name)).equals(Buffer.from(expected.readBytes(name)))).toBe(true);
  }
}

function tensorsOf(src: TensorSource): SimpleTensor[] {
  return src.names().map((name) => ({ ...src.info(name), data: () => src.readBytes(name) }));
}

describe.skipIf(!haveFixtures)('fixture models saved as torch .bin and loaded back', () => {
  it.each(MODELS)('%s: single pytorch_model.bin and 2-shard pytorch_model-0000k-of-00002.bin', async (model) => {
    const original = SafetensorsFile.open(path.join(fixtures, model, 'model.safetensors'));
    try {
      const single = folder(`${model}-single`);
      await torchSaveStateDict(path.join(single, 'pytorch_model.bin'), tensorsOf(original));
      const a = await openCheckpoint(single);
      expect(a).toBeInstanceOf(TorchCheckpointFile);
      expectSameTensors(a, original);
      a.close();

      const sharded = folder(`${model}-sharded`);
      const names = original.names();
      const half = Math.ceil(names.length / 2);
      const weightMap: Record<string, string> = {};
      for (const [k, part] of [names.slice(0, half), names.slice(half)].entries()) {
        const file = `pytorch_model-0000${k + 1}-of-00002.bin`;
        const sub = tensorsOf(original).filter((t) => part.includes(t.name));
        await torchSaveStateDict(path.join(sharded, file), sub, { container: 'dict' });
        for (const n of part) weightMap[n] = file;
      }
      fs.writeFileSync(path.join(sharded, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
      const b = await openCheckpoint(sharded);
      expect(b.location).toBe(sharded);
      expectSameTensors(b, original);
      const first = names[0]!;
      expect(Buffer.from(bytesOf(b.readFloat32(first))).equals(Buffer.from(bytesOf(original.readFloat32(first))))).toBe(true);
      b.close();
    } finally {
      original.close();
    }
  });
});

describe('sharded safetensors', () => {
  const tensors: TensorToWrite[] = Array.from({ length: 5 }, (_, i) => ({
    name: `layers.${i}.weight`, dtype: 'F32', shape: [4, 8], data: bytesOf(Float32Array.from({ length: 32 }, (_, j) => i * 100 + j)),
  }));

  it('writes shards + index and reads them back through openCheckpoint', async () => {
    const out = folder('st-sharded');
    const res = await writeShardedSafetensors(out, tensors, { maxShardBytes: 300, metadata: { format: 'pt' } });
    expect(res.files).toEqual([shardName(1, 3), shardName(2, 3), shardName(3, 3)]);
    expect(res.files[0]).toBe('model-00001-of-00003.safetensors');
    expect(res.totalSize).toBe(5 * 128);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8')) as { metadata: unknown; weight_map: Record<string, string> };
    expect(index.metadata).toEqual({ total_size: 640 });
    expect(index.weight_map).toEqual({
      'layers.0.weight': res.files[0], 'layers.1.weight': res.files[0],
      'layers.2.weight': res.files[1], 'layers.3.weight': res.files[1],
      'layers.4.weight': res.files[2],
    });
    const shard = SafetensorsFile.open(path.join(out, res.files[2]!));
    expect(shard.metadata).toEqual({ format: 'pt' });
    shard.close();
    const src = await openCheckpoint(out);
    expect(src.names()).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      expect(src.info(t.name)).toEqual({ name: t.name, dtype: 'F32', shape: [4, 8] });
      expect(src.readBytes(t.name)).toEqual(t.data);
      expect(bytesOf(src.readFloat32(t.name))).toEqual(t.data);
    }
    src.close();
  });

  it('writes a single model.safetensors when everything fits', async () => {
    const out = folder('st-single');
    const res = await writeShardedSafetensors(out, tensors, { maxShardBytes: 10_000 });
    expect(res).toEqual({ files: ['model.safetensors'], totalSize: 640 });
    expect(fs.readdirSync(out)).toEqual(['model.safetensors']);
    const src = await openCheckpoint(out);
    expect(src.names()).toHaveLength(5);
    src.close();
  });

  it('gives a tensor bigger than the shard size a shard of its own', async () => {
    const out = folder('st-big');
    const res = await writeShardedSafetensors(out, tensors.slice(0, 3), { maxShardBytes: 100 });
    expect(res.files).toHaveLength(3);
  });
});

describe('openCheckpoint: layout and errors', () => {
  const one = (v: number): TensorToWrite => ({ name: 'w', dtype: 'F32', shape: [1], data: bytesOf(Float32Array.of(v)) });

  it('prefers model.safetensors over pytorch_model.bin', async () => {
    const out = folder('both');
    await writeSafetensors(path.join(out, 'model.safetensors'), [one(1)]);
    await torchSaveStateDict(path.join(out, 'pytorch_model.bin'), [one(2)]);
    const src = await openCheckpoint(out);
    expect([...src.readFloat32('w')]).toEqual([1]);
    src.close();
  });

  it('names the folder and what it looked for when nothing is there', async () => {
    const out = folder('empty');
    fs.writeFileSync(path.join(out, 'weights.pt'), 'x');
    const err = await openCheckpoint(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(out);
    expect((err as Error).message).toMatch(/model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin, pytorch_model\.bin\.index\.json.*weights\.pt/);
    await expect(openCheckpoint(path.join(dir, 'no-such-folder'))).rejects.toThrow(/no-such-folder: model folder does not exist/);
  });

  it('names a shard the index lists but the folder lacks', async () => {
    const out = folder('missing-shard');
    await writeSafetensors(path.join(out, 'model-00001-of-00002.safetensors'), [one(1)]);
    fs.writeFileSync(path.join(out, 'model.safetensors.index.json'), JSON.stringify({
      weight_map: { w: 'model-00001-of-00002.safetensors', v: 'model-00002-of-00002.safetensors' },
    }));
    const err = await openCheckpoint(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as WeightFileError).file).toBe(path.join(out, 'model-00002-of-00002.safetensors'));
    expect((err as Error).message).toMatch(/shard listed in model\.safetensors\.index\.json is missing from/);
  });

  it('names a tensor the index puts in a shard that does not hold it', async () => {
    const out = folder('absent-tensor');
    await torchSaveStateDict(path.join(out, 'pytorch_model-00001-of-00001.bin'), [one(1)], { container: 'dict' });
    fs.writeFileSync(path.join(out, 'pytorch_model.bin.index.json'), JSON.stringify({
      weight_map: { w: 'pytorch_model-00001-of-00001.bin', 'head.weight': 'pytorch_model-00001-of-00001.bin' },
    }));
    const err = await openCheckpoint(out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as WeightFileError).tensor).toBe('head.weight');
    expect((err as Error).message).toContain(path.join(out, 'pytorch_model-00001-of-00001.bin'));
    expect((err as Error).message).toMatch(/listed in pytorch_model\.bin\.index\.json but absent from this shard/);
  });

  it('reports a malformed index with its path', async () => {
    const out = folder('bad-index');
    fs.writeFileSync(path.join(out, 'model.safetensors.index.json'), '{"weight_map": ');
    await expect(openCheckpoint(out)).rejects.toThrow(/model\.safetensors\.index\.json: not valid JSON/);
  });

  it('refuses a weight file, shard or index that is a folder with a one-line InputError', async () => {
    for (const [name, layout] of [
      ['dir-st', 'model.safetensors'], ['dir-bin', 'pytorch_model.bin'], ['dir-index', 'model.safetensors.index.json'],
    ] as const) {
      const out = folder(name);
      fs.mkdirSync(path.join(out, layout));
      const err = await openCheckpoint(out).catch((e: unknown) => e);
      expect(err, layout).toBeInstanceOf(InputError);
      expect((err as Error).message, layout).toContain(path.join(out, layout));
    }
    const out = folder('dir-shard');
    fs.mkdirSync(path.join(out, 'model-00001-of-00001.safetensors'));
    fs.writeFileSync(path.join(out, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors' } }));
    await expect(openCheckpoint(out)).rejects.toThrow(/model-00001-of-00001\.safetensors: not a regular file/);
  });

  it('openWeightFile picks the reader by extension', async () => {
    const st = path.join(dir, 'x.safetensors');
    const pt = path.join(dir, 'x.pt');
    await writeSafetensors(st, [one(3)]);
    await torchSaveStateDict(pt, [one(4)]);
    const a = await openWeightFile(st);
    const b = await openWeightFile(pt);
    expect(a).toBeInstanceOf(SafetensorsFile);
    expect(b).toBeInstanceOf(TorchCheckpointFile);
    expect([...a.readFloat32('w'), ...b.readFloat32('w')]).toEqual([3, 4]);
    a.close();
    b.close();
    await expect(openWeightFile(path.join(dir, 'x.gguf'))).rejects.toThrow(/unknown weight file type "\.gguf"/);
  });
});
