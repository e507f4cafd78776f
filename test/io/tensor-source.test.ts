import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RandomTensorSource } from '../../src/bench/random-model.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { fromFloat32 } from '../../src/io/dtypes.js';
import { WeightFileError } from '../../src/io/errors.js';
import { writeShardedSafetensors } from '../../src/io/safetensors-writer.js';
import { TensorMap, type TensorInfo } from '../../src/io/tensor-source.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-tensor-source-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

class Bf16Bytes extends TensorMap<TensorInfo & { readonly values: Float32Array }> {
  constructor(tensors: Record<string, number[]>) {
    super('memory', new Map(Object.entries(tensors).map(([name, v]) => [name, { name, dtype: 'BF16', shape: [v.length], values: Float32Array.from(v) }])));
  }

  readBytes(name: string): Uint8Array {
    return fromFloat32(this.entry(name).values, 'BF16');
  }
}

describe('TensorMap: the one TensorSource map', () => {
  it('lists, finds, describes and converts the stored bytes to float32', () => {
    const source = new Bf16Bytes({ b: [1.5, -2], a: [0.25] });
    expect(source.names()).toEqual(['b', 'a']);
    expect(source.has('a')).toBe(true);
    expect(source.has('c')).toBe(false);
    expect(source.info('b')).toEqual({ name: 'b', dtype: 'BF16', shape: [2] });
    expect([...source.readFloat32('b')]).toEqual([1.5, -2]);
    expect(() => source.close()).not.toThrow();
  });

  it('every kind of source names the source and the tensor when a name is not there', async () => {
    const folder = path.join(tmp, 'sharded');
    fs.mkdirSync(folder);
    await writeShardedSafetensors(folder, [
      { name: 'x', dtype: 'F32', shape: [4], data: () => fromFloat32(new Float32Array(4), 'F32') },
      { name: 'y', dtype: 'F32', shape: [4], data: () => fromFloat32(new Float32Array(4), 'F32') },
    ], { maxShardBytes: 16 });
    const sharded = await openCheckpoint(folder);
    const random = new RandomTensorSource({ model_type: 'rwkv', hidden_size: 8, attention_hidden_size: 8, intermediate_size: 16, vocab_size: 16, num_hidden_layers: 1, context_length: 8 });
    try {
      expect(sharded.names().sort()).toEqual(['x', 'y']);
      for (const source of [sharded, random, new Bf16Bytes({})]) {
        expect(() => source.info('missing')).toThrow(WeightFileError);
        expect(() => source.readBytes('missing')).toThrow(`${source.location}: tensor "missing": no such tensor`);
      }
    } finally {
      sharded.close();
    }
  });

  it('random bench weights depend only on the seed and the name', () => {
    const config = { model_type: 'rwkv', hidden_size: 8, attention_hidden_size: 8, intermediate_size: 16, vocab_size: 16, num_hidden_layers: 1, context_length: 8 };
    const [a, b, c] = [new RandomTensorSource(config, 3), new RandomTensorSource(config, 3), new RandomTensorSource(config, 4)];
    const name = 'rwkv.blocks.0.attention.key.weight';
    expect(a.readFloat32(name)).toEqual(b.readFloat32(name));
    expect(a.readFloat32(name)).not.toEqual(c.readFloat32(name));
    const bound = 0.02 * Math.sqrt(3);
    expect(a.readFloat32(name).every((v) => Math.abs(v) <= bound + 1e-9)).toBe(true);
    expect(a.readFloat32(name)).not.toEqual(a.readFloat32('rwkv.blocks.0.attention.value.weight'));
  });
});
