/**
 * Loading 4-bit models in-process: quantize on load, pre-quantized folders (ditty's and the
 * transformers key layout), the same bits either way, skip modules, bits 16, and malformed entries.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nf4Linear } from '../../src/models/nf4-linear.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { InputError } from '../../src/io/errors.js';
import { writeSafetensors } from '../../src/io/safetensors-writer.js';
import type { TensorInfo, TensorSource } from '../../src/io/tensor-source.js';
import { readModelConfig } from '../../src/models/config.js';
import { DenseLinear } from '../../src/models/linear.js';
import { buildModel } from '../../src/models/load.js';
import type { BlockwiseCausalLM } from '../../src/models/model.js';
import { dequantizeNf4 } from '../../src/quant/nf4.js';
import { DEFAULT_QUANTIZATION, type QuantizationOptions } from '../../src/quant/options.js';
import { openModel } from '../../src/runtime/open-model.js';
import { quantizeModel } from '../../src/export/quantized-model.js';
import { useBackend } from '../helpers/backend.js';
import { sharedPath } from '../helpers/shared.js';

const rwkv = sharedPath('fixtures', 'tiny-rwkv');
const neox = sharedPath('fixtures', 'tiny-neox-sequential');
const IDS = [[4118, 41959, 27, 187, 7883, 4159, 253, 4460, 28680, 90, 14, 47691]];

function logits(model: BlockwiseCausalLM): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(IDS, [1, IDS[0]!.length], 'int32')).dataSync() as Float32Array);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function open(folder: string, quantization?: QuantizationOptions): Promise<BlockwiseCausalLM> {
  return (await openModel(folder, { progress: false, ...(quantization ? { quantization } : {}) })).model;
}

/** A view of a source with some tensors replaced or removed, for malformed checkpoints. */
class EditedSource implements TensorSource {
  constructor(
    private readonly base: TensorSource,
    private readonly edits: ReadonlyMap<string, { info: TensorInfo; bytes: Uint8Array } | null>,
  ) {}
  get location(): string { return this.base.location; }
  names(): string[] {
    const names = this.base.names().filter((n) => this.edits.get(n) !== null);
    return [...names, ...[...this.edits.keys()].filter((n) => this.edits.get(n) && !this.base.has(n))];
  }
  has(name: string): boolean { return this.edits.has(name) ? this.edits.get(name) !== null : this.base.has(name); }
  info(name: string): TensorInfo { return this.edits.get(name)?.info ?? this.base.info(name); }
  readBytes(name: string): Uint8Array { return this.edits.get(name)?.bytes ?? this.base.readBytes(name); }
  readFloat32(name: string): Float32Array { return this.base.readFloat32(name); }
  close(): void { this.base.close(); }
}

let tmp = '';
let rwkv4 = '';
let neox4 = '';
let neox4Plain = '';

describe.skipIf(!rwkv.present || !neox.present)('loading 4-bit models', () => {
  beforeAll(async () => {
    await useBackend();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-quant-load-'));
    rwkv4 = path.join(tmp, 'rwkv4');
    neox4 = path.join(tmp, 'neox4');
    neox4Plain = path.join(tmp, 'neox4-plain');
    const plain = { ...DEFAULT_QUANTIZATION, doubleQuant: false, blocksize: 256 };
    for (const [src, out, quantization] of [[rwkv.path, rwkv4, DEFAULT_QUANTIZATION], [neox.path, neox4, DEFAULT_QUANTIZATION], [neox.path, neox4Plain, plain]] as const) {
      await quantizeModel(src, { out, quantization, computeDtype: 'bfloat16', maxShardBytes: 2 ** 31, progress: false });
    }
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('quantize on load holds every block linear in NF4, the head and the other weights in float', async () => {
    for (const folder of [rwkv.path, neox.path]) {
      const model = await open(folder, DEFAULT_QUANTIZATION);
      const head = model.architecture === 'rwkv' ? 'head' : 'embed_out';
      for (const [p, layer] of model.linears) expect(layer, p).toBeInstanceOf(p === head ? DenseLinear : Nf4Linear);
      expect(model.warnings).toEqual([]);
      model.dispose();
    }
  });

  it('a 4-bit folder gives exactly the logits of quantize on load (same bits), with and without double quant', async () => {
    const cases: [string, string, QuantizationOptions][] = [
      [rwkv.path, rwkv4, DEFAULT_QUANTIZATION],
      [neox.path, neox4, DEFAULT_QUANTIZATION],
      [neox.path, neox4Plain, { ...DEFAULT_QUANTIZATION, doubleQuant: false, blocksize: 256 }],
    ];
    for (const [float, folder, q] of cases) {
      const onLoad = await open(float, q);
      const stored = await open(folder);
      for (const [p, layer] of stored.linears) {
        const other = onLoad.linears.get(p)!;
        expect(layer.constructor, p).toBe(other.constructor);
        if (layer instanceof Nf4Linear && other instanceof Nf4Linear) {
          expect(sameBits(dequantizeNf4(layer.state), dequantizeNf4(other.state)), p).toBe(true);
          expect(Buffer.from(layer.state.packed).equals(Buffer.from(other.state.packed)), p).toBe(true);
        }
      }
      expect(stored.warnings).toEqual([]);
      expect(sameBits(logits(stored), logits(onLoad))).toBe(true);
      onLoad.dispose();
      stored.dispose();
    }
  });

  it('a checkpoint with 4-bit keys but no quantization_config (transformers layout) loads the same', async () => {
    const copy = path.join(tmp, 'keys-only');
    fs.cpSync(neox4, copy, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(copy, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete config['quantization_config'];
    fs.writeFileSync(path.join(copy, 'config.json'), JSON.stringify(config));
    const a = await open(copy);
    const b = await open(neox4);
    expect(sameBits(logits(a), logits(b))).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('bits 16 dequantizes a 4-bit folder (with a warning); skip modules keep linears in float', async () => {
    const nf4 = await open(rwkv4);
    const float = await open(rwkv4, { ...DEFAULT_QUANTIZATION, bits: 16 });
    expect([...float.linears.values()].every((l) => l instanceof DenseLinear)).toBe(true);
    expect(float.warnings).toEqual([expect.stringMatching(/dequantized 21 stored 4-bit linear weight\(s\) to float32/)]);
    expect(sameBits(logits(float), logits(nf4))).toBe(true);
    nf4.dispose();
    float.dispose();
    const skipped = await open(rwkv.path, { ...DEFAULT_QUANTIZATION, skipModules: ['feed_forward.value', 'rwkv.blocks.1.attention.key'] });
    const dense = [...skipped.linears].filter(([, l]) => l instanceof DenseLinear).map(([p]) => p).sort();
    expect(dense).toEqual(['head', 'rwkv.blocks.0.feed_forward.value', 'rwkv.blocks.1.attention.key', 'rwkv.blocks.1.feed_forward.value', 'rwkv.blocks.2.feed_forward.value']);
    skipped.dispose();
  });

  it('rejects a skip module that matches no linear (listing them) and a bad blocksize', async () => {
    await expect(open(rwkv.path, { ...DEFAULT_QUANTIZATION, skipModules: ['attention.query'] }))
      .rejects.toThrow(/skip module "attention.query" matches no linear layer; the model's 22 linear layers: .*receptance ×6/);
    await expect(open(rwkv.path, { ...DEFAULT_QUANTIZATION, blocksize: 48 })).rejects.toThrow(InputError);
    await expect(open(rwkv.path, { ...DEFAULT_QUANTIZATION, blocksize: 48 })).rejects.toThrow(/blocksize must be a power of two between 32 and 4096, got 48/);
  });

  it('names the key of a malformed or truncated 4-bit entry', async () => {
    const w = 'rwkv.blocks.1.attention.value.weight';
    const source = await openCheckpoint(rwkv4);
    const config = readModelConfig(path.join(rwkv4, 'config.json'));
    const u8 = (bytes: Uint8Array) => ({ info: { name: '', dtype: 'U8' as const, shape: [bytes.length] }, bytes });
    const cases: [Map<string, { info: TensorInfo; bytes: Uint8Array } | null>, RegExp][] = [
      [new Map([[`${w}.nested_absmax`, null]]), new RegExp(`missing tensor "${w}.nested_absmax"`)],
      [new Map([[`${w}.absmax`, u8(source.readBytes(`${w}.absmax`).slice(0, 15))]]), new RegExp(`tensor "${w}.absmax": 15 values \\(shape \\[15\\]\\), expected 16`)],
      [new Map([[`${w}`, { info: { name: w, dtype: 'U8', shape: [500, 1] }, bytes: source.readBytes(w).slice(0, 500) }]]), new RegExp(`tensor "${w}": 500 values \\(shape \\[500, 1\\]\\), expected 512`)],
      [new Map([[`${w}.quant_state.bitsandbytes__nf4`, u8(source.readBytes(`${w}.quant_state.bitsandbytes__nf4`).slice(0, 40))]]), new RegExp(`${w}.quant_state.bitsandbytes__nf4: not UTF-8 JSON`)],
      [new Map([[`${w}.quant_state.bitsandbytes__nf4`, null]]), new RegExp(`missing tensor "${w}.quant_state.bitsandbytes__nf4"`)],
      [new Map([[`${w}.quant_state.bitsandbytes__nf4`, u8(new TextEncoder().encode('{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [16, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.5}'))]]), new RegExp(`${w}.quant_state.bitsandbytes__nf4": shape \\[16, 64\\], expected \\[32, 32\\]`)],
      [new Map([[`${w}.quant_state.bitsandbytes__fp4`, u8(new Uint8Array(2))]]), new RegExp(`${w}.quant_state.bitsandbytes__fp4": FP4 4-bit weights are not supported`)],
    ];
    for (const [edits, message] of cases) {
      const before = tf.memory().numTensors;
      let error: unknown;
      try {
        buildModel(config, new EditedSource(source, edits));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message.startsWith(rwkv4)).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    }
    source.close();
  });

  it('a truncated 4-bit file is refused naming the file and the key', async () => {
    const copy = path.join(tmp, 'truncated');
    fs.cpSync(rwkv4, copy, { recursive: true });
    const source = await openCheckpoint(rwkv4);
    const key = 'rwkv.blocks.2.feed_forward.key.weight.absmax';
    await writeSafetensors(path.join(copy, 'model.safetensors'), source.names().map((name) => {
      const info = source.info(name);
      const bytes = source.readBytes(name);
      return name === key ? { name, dtype: info.dtype, shape: [bytes.length - 3], data: bytes.slice(0, -3) } : { name, dtype: info.dtype, shape: info.shape, data: bytes };
    }), { format: 'pt' });
    source.close();
    await expect(open(copy)).rejects.toThrow(new RegExp(`^${copy}.*tensor "${key}": 61 values \\(shape \\[61\\]\\), expected 64$`));
    await expect(open(copy)).rejects.toBeInstanceOf(InputError);
  });

  it('refuses quantization formats it cannot read, naming config.json', async () => {
    for (const [i, [qc, message]] of ([
      [{ quant_method: 'bitsandbytes', load_in_8bit: true, load_in_4bit: false }, /quantization_config\.load_in_8bit: bitsandbytes 8-bit checkpoints are not supported/],
      [{ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'fp4' }, /quantization_config\.bnb_4bit_quant_type: "fp4" is not supported/],
      [{ quant_method: 'gptq', bits: 4 }, /quantization_config\.quant_method: "gptq" is not supported/],
    ] as const).entries()) {
      const copy = path.join(tmp, `config-${i}`);
      fs.mkdirSync(copy);
      for (const f of ['model.safetensors', 'tokenizer.json']) fs.symlinkSync(path.join(rwkv.path, f), path.join(copy, f));
      const config = JSON.parse(fs.readFileSync(path.join(rwkv.path, 'config.json'), 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(path.join(copy, 'config.json'), JSON.stringify({ ...config, quantization_config: qc }));
      await expect(open(copy)).rejects.toThrow(message);
      await expect(open(copy)).rejects.toThrow(/config\.json: /);
    }
  });
});

