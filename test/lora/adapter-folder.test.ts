import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../../src/io/safetensors-writer.js';
import { ADAPTER_CONFIG } from '../../src/lora/adapter-config.js';
import { ADAPTER_BIN, ADAPTER_SAFETENSORS, adapterKey, readAdapter, saveAdapter } from '../../src/lora/adapter-files.js';
import { loadAdapter } from '../../src/lora/adapter-inject.js';
import { defaultLoraConfig, type LoraConfig } from '../../src/lora/config.js';
import { injectLora, type LoraLinear } from '../../src/lora/lora-linear.js';
import type { LinearLayer } from '../../src/models/types.js';
import { useBackend } from '../helpers/backend.js';
import { torchSaveStateDict } from '../helpers/torch-save.js';
import { disposeAll, neoxLinears, read, rwkvLinears, uniform } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  await useBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-adapter-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const RWKV_CONFIG: LoraConfig = defaultLoraConfig('rwkv');

/** rwkv linears with adapters whose B is random (as after some training). */
function trainedRwkv(config: LoraConfig = RWKV_CONFIG): { linears: Map<string, LinearLayer>; layers: LoraLinear[] } {
  const linears = rwkvLinears();
  const layers = injectLora(linears, config, 7);
  layers.forEach((l, i) => l.loraB.assign(tf.tensor2d(uniform(l.outFeatures * l.r, -0.2, 0.2, 300 + i), [l.outFeatures, l.r])));
  return { linears, layers };
}

async function expectInputError(p: Promise<unknown>, re: RegExp): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(InputError);
  await expect(p).rejects.toThrow(re);
}

const f32 = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes an adapter folder by hand: a config object and F32 tensors. */
async function writeFolder(dir: string, config: Record<string, unknown>, tensors: Array<{ name: string; shape: number[]; seed?: number }>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(config));
  const list: TensorToWrite[] = tensors.map((t) => ({
    name: t.name, dtype: 'F32', shape: t.shape, data: f32(uniform(t.shape[0]! * t.shape[1]!, -1, 1, t.seed ?? 1)),
  }));
  await writeSafetensors(path.join(dir, ADAPTER_SAFETENSORS), list, { format: 'pt' });
}

const peftConfig = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, lora_dropout: 0.0, bias: 'none', fan_in_fan_out: false,
  target_modules: ['attention.key'], inference_mode: true, base_model_name_or_path: 'RWKV/rwkv-4-169m-pile',
  use_dora: false, layer_replication: null, modules_to_save: null, rank_pattern: {}, alpha_pattern: {}, ...over,
});

/** attention.key adapters for the 2-block tiny RWKV (C = 8), rank 2. */
const keyTensors = (suffix = '.weight'): Array<{ name: string; shape: number[]; seed: number }> => [0, 1].flatMap((i) => [
  { name: `base_model.model.rwkv.blocks.${i}.attention.key.lora_A${suffix}`, shape: [2, 8], seed: 10 + i },
  { name: `base_model.model.rwkv.blocks.${i}.attention.key.lora_B${suffix}`, shape: [8, 2], seed: 20 + i },
]);

describe('saveAdapter / loadAdapter', () => {
  it('round-trips A and B bit for bit and reproduces the outputs', async () => {
    const { linears, layers } = trainedRwkv();
    const dir = path.join(tmp, 'roundtrip');
    await saveAdapter(dir, layers, RWKV_CONFIG, { baseModelNameOrPath: 'RWKV/rwkv-4-169m-pile', revision: 'v1' });
    expect(fs.readdirSync(dir).sort()).toEqual([ADAPTER_CONFIG, ADAPTER_SAFETENSORS]);
    expect(await readAdapter(dir)).toMatchObject({ baseModelNameOrPath: 'RWKV/rwkv-4-169m-pile', revision: 'v1' });
    expect(fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const st = SafetensorsFile.open(path.join(dir, ADAPTER_SAFETENSORS));
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(st.names()).toContain('base_model.model.rwkv.blocks.0.attention.key.lora_A.weight');
    expect(st.info('base_model.model.rwkv.blocks.0.attention.key.lora_A.weight')).toMatchObject({ dtype: 'F32', shape: [8, 8] });
    expect(st.info('base_model.model.rwkv.blocks.1.feed_forward.key.lora_B.weight')).toMatchObject({ dtype: 'F32', shape: [32, 8] });
    expect(st.names()).toHaveLength(2 * layers.length);
    st.close();

    const fresh = rwkvLinears();
    const loaded = await loadAdapter(dir, fresh);
    expect(loaded.baseModelNameOrPath).toBe('RWKV/rwkv-4-169m-pile');
    expect(loaded.config).toMatchObject({ r: 8, alpha: 16, dropout: 0.05, targetModules: ['key', 'value', 'receptance'] });
    expect(loaded.layers.map((l) => l.path)).toEqual(layers.map((l) => l.path));
    const x = tf.tensor2d(uniform(3 * 8, -1, 1, 9), [3, 8]);
    for (const [i, l] of loaded.layers.entries()) {
      const orig = layers[i]!;
      expect(Buffer.from(f32(l.weights().a)).equals(Buffer.from(f32(orig.weights().a)))).toBe(true);
      expect(Buffer.from(f32(l.weights().b)).equals(Buffer.from(f32(orig.weights().b)))).toBe(true);
      expect(l.scaling).toBe(orig.scaling);
      if (l.inFeatures === 8) expect(read(l.apply(x))).toEqual(read(orig.apply(x)));
      expect(fresh.get(l.path)).toBe(l);
    }
    x.dispose();

    // Saving again replaces the folder.
    await saveAdapter(dir, layers.slice(0, 3), { ...RWKV_CONFIG, targetModules: ['rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.value', 'rwkv.blocks.0.attention.receptance'] });
    expect((await readAdapter(dir)).modules.size).toBe(3);
    disposeAll(linears);
    disposeAll(fresh);
  });

  it('never leaves a half-written folder, and refuses folders holding other files', async () => {
    const { linears, layers } = trainedRwkv();
    const dir = path.join(tmp, 'atomic');
    await expect(saveAdapter(dir, [layers[0]!, layers[0]!], RWKV_CONFIG)).rejects.toThrow(/tensor name given twice/);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const busy = path.join(tmp, 'busy');
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    await expectInputError(saveAdapter(busy, layers, RWKV_CONFIG), /busy: the folder holds files that are not part of an adapter \(notes\.txt\)/);
    expect(fs.readdirSync(busy)).toEqual(['notes.txt']);
    disposeAll(linears);
  });

  it('loads PEFT folders: .default names, adapter_model.bin, regex and null target_modules', async () => {
    const dflt = path.join(tmp, 'default-names');
    await writeFolder(dflt, peftConfig(), keyTensors('.default.weight'));
    const a = rwkvLinears();
    const la = await loadAdapter(dflt, a);
    expect(la.layers.map((l) => [l.path, l.r, l.scaling])).toEqual([
      ['rwkv.blocks.0.attention.key', 2, 2], ['rwkv.blocks.1.attention.key', 2, 2],
    ]);
    expect(la.layers[0]!.weights().a).toEqual(uniform(16, -1, 1, 10));

    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, ADAPTER_CONFIG), JSON.stringify(peftConfig({ target_modules: '.*attention\\.key' })));
    await torchSaveStateDict(path.join(bin, ADAPTER_BIN), keyTensors().map((t) => ({
      name: t.name, dtype: 'F32' as const, shape: t.shape, data: f32(uniform(t.shape[0]! * t.shape[1]!, -1, 1, t.seed)),
    })));
    const b = rwkvLinears();
    const lb = await loadAdapter(bin, b);
    expect(lb.config.targetModules).toBe('.*attention\\.key');
    expect(lb.layers.map((l) => l.weights().b)).toEqual(la.layers.map((l) => l.weights().b));

    const nul = path.join(tmp, 'null-targets');
    await writeFolder(nul, peftConfig({ target_modules: null }), keyTensors());
    const c = rwkvLinears();
    expect((await loadAdapter(nul, c)).layers).toHaveLength(2);
    for (const m of [a, b, c]) disposeAll(m);
  });

  it('detects an adapter made for another architecture', async () => {
    const { linears, layers } = trainedRwkv();
    const dir = path.join(tmp, 'rwkv-adapter');
    await saveAdapter(dir, layers, RWKV_CONFIG);
    const neox = neoxLinears();
    await expectInputError(loadAdapter(dir, neox),
      /this adapter was made for a different base model: its keys look like rwkv\.\* \(e\.g\. base_model\.model\.rwkv\.blocks\.0\.attention\.key\.lora_A\.weight\), but this model's linear layers are gpt_neox\.\*, embed_out\.\*/);
    expect([...neox.values()].every((l) => !('loraA' in l))).toBe(true);
    disposeAll(linears);
    disposeAll(neox);
  });

  it('names the key, the expected and the found shape on a mismatch', async () => {
    const dir = path.join(tmp, 'bad-shape');
    const tensors = keyTensors();
    tensors[2] = { ...tensors[2]!, shape: [2, 9] };
    await writeFolder(dir, peftConfig(), tensors);
    const m = rwkvLinears();
    await expectInputError(loadAdapter(dir, m),
      /base_model\.model\.rwkv\.blocks\.1\.attention\.key\.lora_A\.weight has shape \[2, 9\], expected \[r, in\] = \[2, 8\]/);
    const rank = path.join(tmp, 'bad-rank');
    await writeFolder(rank, peftConfig({ r: 4 }), keyTensors());
    await expectInputError(loadAdapter(rank, m), /lora_A\.weight has shape \[2, 8\], expected \[r, in\] = \[4, 8\]/);
    disposeAll(m);
  });

  it('reports missing and unexpected keys', async () => {
    const m = rwkvLinears();
    const half = path.join(tmp, 'half');
    await writeFolder(half, peftConfig(), keyTensors().filter((t) => !t.name.endsWith('1.attention.key.lora_B.weight')));
    await expectInputError(loadAdapter(half, m), /missing key base_model\.model\.rwkv\.blocks\.1\.attention\.key\.lora_B\.weight \(rwkv\.blocks\.1\.attention\.key has only lora_A\)/);

    const fewer = path.join(tmp, 'fewer');
    await writeFolder(fewer, peftConfig({ target_modules: ['attention.key', 'attention.value'] }), keyTensors());
    await expectInputError(loadAdapter(fewer, m), /missing keys for 2 module\(s\) that target_modules \["attention\.key","attention\.value"\] selects: base_model\.model\.rwkv\.blocks\.0\.attention\.value\.lora_A\.weight/);

    const extra = path.join(tmp, 'extra');
    await writeFolder(extra, peftConfig(), [...keyTensors(),
      { name: 'base_model.model.rwkv.blocks.9.attention.key.lora_A.weight', shape: [2, 8] },
      { name: 'base_model.model.rwkv.blocks.9.attention.key.lora_B.weight', shape: [8, 2] }]);
    await expectInputError(loadAdapter(extra, m), /1 key\(s\) name no linear layer of the model: base_model\.model\.rwkv\.blocks\.9\.attention\.key\.lora_A\.weight/);

    const unselected = path.join(tmp, 'unselected');
    await writeFolder(unselected, peftConfig({ target_modules: ['rwkv.blocks.0.attention.key'] }), keyTensors());
    await expectInputError(loadAdapter(unselected, m), /key base_model\.model\.rwkv\.blocks\.1\.attention\.key\.lora_A\.weight is for rwkv\.blocks\.1\.attention\.key, which target_modules/);

    const dora = path.join(tmp, 'dora');
    await writeFolder(dora, peftConfig(), [...keyTensors(), { name: 'base_model.model.rwkv.blocks.0.attention.key.lora_magnitude_vector', shape: [1, 8] }]);
    await expectInputError(loadAdapter(dora, m), /key "base_model\.model\.rwkv\.blocks\.0\.attention\.key\.lora_magnitude_vector" is not a LoRA weight ditty can load/);
    expect([...m.values()].every((l) => !('loraA' in l))).toBe(true);
    disposeAll(m);
  });

  it('rejects configs it cannot honour', async () => {
    const m = rwkvLinears();
    // Each config problem is one line naming the file and the key (adapter-config.test.ts has them all).
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ peft_type: 'IA3' }, /config-0[/\\]adapter_config\.json: peft_type: "IA3" adapters are not supported; ditty loads LORA adapters only$/],
      [{ use_dora: true }, /adapter_config\.json: use_dora: true is not supported by ditty$/],
      [{ bias: 'all' }, /adapter_config\.json: bias: "all" is not supported/],
      [{ modules_to_save: ['embed'] }, /adapter_config\.json: modules_to_save: \["embed"\] is not supported/],
      [{ r: 'eight' }, /adapter_config\.json: r: must be a positive integer, found "eight"$/],
      [{ r: 0 }, /adapter_config\.json: r: must be a positive integer, found 0$/],
    ];
    for (const [i, [over, re]] of cases.entries()) {
      const dir = path.join(tmp, `config-${i}`);
      await writeFolder(dir, peftConfig(over), keyTensors());
      await expectInputError(loadAdapter(dir, m), re);
    }
    const broken = path.join(tmp, 'broken-json');
    await writeFolder(broken, {}, keyTensors());
    fs.writeFileSync(path.join(broken, ADAPTER_CONFIG), '{"r": 8,');
    await expectInputError(loadAdapter(broken, m), /adapter_config\.json: not valid JSON/);
    await expectInputError(loadAdapter(path.join(tmp, 'nowhere'), m), /nowhere[/\\]adapter_config\.json: not found/);
    const noWeights = path.join(tmp, 'no-weights');
    fs.mkdirSync(noWeights);
    fs.writeFileSync(path.join(noWeights, ADAPTER_CONFIG), JSON.stringify(peftConfig()));
    await expectInputError(loadAdapter(noWeights, m), /holds neither adapter_model\.safetensors nor adapter_model\.bin/);
    disposeAll(m);
  });

  it('keeps adapterKey PEFT-compatible', () => {
    expect(adapterKey('rwkv.blocks.0.attention.key', 'A')).toBe('base_model.model.rwkv.blocks.0.attention.key.lora_A.weight');
    expect(adapterKey('gpt_neox.layers.0.attention.query_key_value', 'B')).toBe('base_model.model.gpt_neox.layers.0.attention.query_key_value.lora_B.weight');
  });
});
