import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreTokens } from '../../src/eval/score.js';
import { TfjsEngine } from '../../src/runtime/tfjs-engine.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { writeSafetensors, type TensorToWrite } from '../../src/io/safetensors-writer.js';
import { ADAPTER_CONFIG } from '../../src/lora/adapter-config.js';
import { ADAPTER_SAFETENSORS, readAdapter, saveAdapter } from '../../src/lora/adapter-files.js';
import { defaultLoraConfig } from '../../src/lora/config.js';
import { injectLora } from '../../src/lora/lora-linear.js';
import { mergedWeight } from '../../src/lora/merge.js';
import { quantStateDtypeOf, toBnbTensors } from '../../src/quant/bnb-format.js';
import { dequantizeNf4, quantizeNf4, type Nf4State } from '../../src/quant/nf4.js';
import type { Architecture } from '../../src/models/types.js';
import { openModel } from '../../src/runtime/open-model.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { sharedPath } from '../helpers/shared.js';
import { uniform } from '../lora/helpers.js';

const rwkv = sharedPath('fixtures', 'tiny-rwkv');
const neox = sharedPath('fixtures', 'tiny-neox-sequential');
const TEXT = 'The quick brown fox jumps over the lazy dog. Fine-tuning changes what a model expects next.';

interface Run {
  readonly fixture: string;
  /** the run folder: checkpoint-7 (complete) and checkpoint-9 (incomplete, unreadable) */
  readonly dir: string;
  readonly checkpoint: string;
  readonly targets: readonly string[];
  readonly baseLoss: number;
  readonly adapterLoss: number;
}

let tmp: string;
const runs = new Map<Architecture, Run>();

/** Opens `fixture`, adds rank-4 adapters with random B, saves them as a run's checkpoint-7, and scores TEXT with and without. */
async function makeRun(fixture: string, arch: Architecture): Promise<Run> {
  const opened = await openModel(fixture, { backend: 'wasm', progress: false });
  try {
    const ids = opened.tokenizer.encode(TEXT);
    const scorer = new TfjsEngine(opened.model, [], undefined, 'none', 'tfjs');
    const baseLoss = scoreTokens(scorer, ids, 256).loss;
    const config = { ...defaultLoraConfig(arch), r: 4 };
    const layers = injectLora(opened.model.linears, config, 3);
    layers.forEach((l, i) => l.loraB.assign(tf.tensor2d(uniform(l.outFeatures * l.r, -0.3, 0.3, 100 + i), [l.outFeatures, l.r])));
    const adapterLoss = scoreTokens(scorer, ids, 256).loss;
    const dir = path.join(tmp, `run-${arch}`);
    const checkpoint = path.join(dir, 'checkpoint-7');
    await saveAdapter(checkpoint, layers, config, { baseModelNameOrPath: path.resolve(fixture) });
    fs.writeFileSync(path.join(checkpoint, 'trainer_state.json'), '{"global_step": 7}');
    fs.mkdirSync(path.join(dir, 'checkpoint-9'));
    fs.writeFileSync(path.join(dir, 'checkpoint-9', ADAPTER_CONFIG), 'not json: an unfinished checkpoint must be ignored');
    return { fixture, dir, checkpoint, targets: layers.map((l) => l.path), baseLoss, adapterLoss };
  } finally {
    opened.model.dispose();
  }
}

function json<T>(r: CliResult): T {
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

const evalLoss = async (model: string, ...extra: string[]): Promise<number> =>
  json<{ loss: number }>(await runCli(['eval', model, '--text', TEXT, '--json', ...extra])).loss;

/** `ditty export <run's checkpoint> --merged <tmp>/<name> --dtype bf16`; returns the output folder. */
async function exportBf16(run: Run, name: string): Promise<string> {
  const out = path.join(tmp, name);
  const r = await runCli(['export', run.checkpoint, '--merged', out, '--dtype', 'bf16']);
  expect(r.status, r.stderr).toBe(0);
  return out;
}

/** config.json of the bf16 merge says bfloat16, and the merged model scores TEXT like the adapter does. */
async function expectBf16MergedModel(out: string, run: Run): Promise<void> {
  expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'))).toMatchObject({ torch_dtype: 'bfloat16' });
  expect(Math.abs((await evalLoss(out)) - run.adapterLoss)).toBeLessThan(0.05);
}

/** Whether two files hold the same bytes. */
const sameFile = (a: string, b: string, name: string): boolean => fs.readFileSync(path.join(a, name)).equals(fs.readFileSync(path.join(b, name)));

/**
 * Writes `fixture` as bitsandbytes would save it in 4 bits (NF4, double quant) into `dir`: every linear
 * but the head quantized. Returns the NF4 states by module path.
 */
async function writeBnbCopy(fixture: string, dir: string, linears: readonly string[]): Promise<Map<string, Nf4State>> {
  const source = await openCheckpoint(fixture);
  const states = new Map<string, Nf4State>();
  const tensors: TensorToWrite[] = [];
  try {
    for (const name of source.names()) {
      const modulePath = name.replace(/\.weight$/, '');
      if (!linears.includes(modulePath)) {
        const { dtype, shape } = source.info(name);
        tensors.push({ name, dtype, shape, data: source.readBytes(name) });
        continue;
      }
      const state = quantizeNf4(source.readFloat32(name), { shape: source.info(name).shape });
      states.set(modulePath, state);
      tensors.push(...toBnbTensors(modulePath, state, quantStateDtypeOf(source.info(name).dtype)));
    }
  } finally {
    source.close();
  }
  fs.mkdirSync(dir);
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const config = JSON.parse(fs.readFileSync(path.join(fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
  const quantization = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, quantization_config: quantization }));
  fs.copyFileSync(path.join(fixture, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  return states;
}

describe.skipIf(!rwkv.present || !neox.present)('--adapter and ditty export on the fixtures', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-export-'));
    runs.set('rwkv', await makeRun(rwkv.path, 'rwkv'));
    runs.set('gpt_neox', await makeRun(neox.path, 'gpt_neox'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const arch of ['rwkv', 'gpt_neox'] as const) {
    it(`${arch}: eval --adapter RUN matches the in-process LoRA model, and the merged export matches that`, async () => {
      const run = runs.get(arch)!;
      expect(Math.abs(run.adapterLoss - run.baseLoss)).toBeGreaterThan(1e-3);
      const merged = path.join(tmp, `merged-${arch}`);
      const [adapterLoss, exported] = await Promise.all([
        evalLoss(run.fixture, '--adapter', run.dir),
        runCli(['export', run.dir, '--merged', merged, '--dtype', 'fp32', '--shard-size', '4MB']),
      ]);
      expect(Math.abs(adapterLoss - run.adapterLoss)).toBeLessThan(1e-6);
      expect(exported.status, exported.stderr).toBe(0);
      expect(exported.stdout).toContain(`merged ${run.targets.length} LoRA linears`);
      expect(Math.abs((await evalLoss(merged)) - adapterLoss)).toBeLessThan(1e-4);
    });
  }

  it('the merged folder is a Hugging Face model folder: config, tokenizer, shards + index; untouched tensors are byte-identical', async () => {
    const run = runs.get('rwkv')!;
    const merged = path.join(tmp, 'merged-rwkv');
    const files = fs.readdirSync(merged).sort();
    expect(files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'model.safetensors.index.json', 'model-00001-of-00004.safetensors']));
    expect(files.filter((f) => f.endsWith('.safetensors'))).toHaveLength(4);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp'))).toEqual([]);
    const config = JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8')) as Record<string, unknown>;
    const baseConfig = JSON.parse(fs.readFileSync(path.join(run.fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({ ...baseConfig, torch_dtype: 'float32' });
    expect(sameFile(merged, run.fixture, 'tokenizer.json')).toBe(true);

    const [base, out] = await Promise.all([openCheckpoint(run.fixture), openCheckpoint(merged)]);
    try {
      expect(out.names().sort()).toEqual(base.names().sort());
      const targets = new Set(run.targets.map((t) => `${t}.weight`));
      for (const name of base.names()) {
        expect(out.info(name).dtype).toBe('F32');
        const same = Buffer.from(out.readBytes(name)).equals(Buffer.from(base.readBytes(name)));
        expect(same, name).toBe(!targets.has(name));
      }
    } finally {
      base.close();
      out.close();
    }
  });

  it('--dtype bf16 writes BF16 tensors and says so in config.json', async () => {
    const run = runs.get('gpt_neox')!;
    const out = await exportBf16(run, 'merged-bf16');
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(true);
    const source = await openCheckpoint(out);
    try {
      expect(new Set(source.names().map((n) => source.info(n).dtype))).toEqual(new Set(['BF16']));
    } finally {
      source.close();
    }
    await expectBf16MergedModel(out, run);
  });

  it('--dtype bf16 on RWKV keeps time_decay and time_first in F32, as transformers (_keep_in_fp32_modules) does', async () => {
    const run = runs.get('rwkv')!;
    const out = await exportBf16(run, 'merged-rwkv-bf16');
    const [base, source] = await Promise.all([openCheckpoint(run.fixture), openCheckpoint(out)]);
    try {
      const kept = source.names().filter((n) => /\.attention\.time_(decay|first)$/.test(n));
      expect(kept).toHaveLength(2 * 3);
      for (const name of source.names()) {
        expect(source.info(name).dtype, name).toBe(kept.includes(name) ? 'F32' : 'BF16');
      }
      for (const name of kept) expect(Buffer.from(source.readBytes(name)).equals(Buffer.from(base.readBytes(name))), name).toBe(true);
    } finally {
      base.close();
      source.close();
    }
    await expectBf16MergedModel(out, run);
  });

  it('a 4-bit bitsandbytes base is merged onto its dequantized weights, with a notice', async () => {
    const run = runs.get('rwkv')!;
    const bnb = path.join(tmp, 'bnb-base');
    const quantizable = (await readAdapter(run.checkpoint)).modules.keys();
    const states = await writeBnbCopy(run.fixture, bnb, [...quantizable, 'rwkv.blocks.0.attention.output']);
    const out = path.join(tmp, 'merged-from-bnb');
    const r = await runCli(['export', run.dir, '--merged', out, '--base', bnb, '--dtype', 'fp32']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/notice: .*4-bit .*lossy/);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).not.toHaveProperty('quantization_config');
    const adapter = await readAdapter(run.checkpoint);
    const merged = await openCheckpoint(out);
    try {
      expect(merged.names().filter((n) => /absmax|quant_map|quant_state/.test(n))).toEqual([]);
      for (const [modulePath, state] of states) {
        const { shape } = merged.info(`${modulePath}.weight`);
        expect(shape).toEqual(state.shape);
        const m = adapter.modules.get(modulePath);
        const base = dequantizeNf4(state);
        const want = m ? mergedWeight(base, [shape[0]!, shape[1]!], m.a!.data, m.b!.data, 16 / 4) : base;
        expect(Buffer.from(merged.readBytes(`${modulePath}.weight`)).equals(Buffer.from(want.buffer)), modulePath).toBe(true);
      }
    } finally {
      merged.close();
    }
  });

  it('export --adapter copies the PEFT files byte for byte', async () => {
    const run = runs.get('rwkv')!;
    const out = path.join(tmp, 'adapter-out');
    const r = await runCli(['export', run.dir, '--adapter', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual([ADAPTER_CONFIG, ADAPTER_SAFETENSORS]);
    for (const f of [ADAPTER_CONFIG, ADAPTER_SAFETENSORS]) expect(sameFile(out, run.checkpoint, f), f).toBe(true);
    const [a, b] = await Promise.all([readAdapter(out), readAdapter(run.checkpoint)]);
    // the file lays tensors out by name (as safetensors' own writer does), so the modules come in name order
    expect([...a.modules.keys()]).toEqual([...run.targets].sort());
    expect(a.config).toEqual(b.config);
    expect(a.baseModelNameOrPath).toBe(path.resolve(run.fixture));
  });

  it('generate --adapter changes the greedy continuation', async () => {
    const run = runs.get('rwkv')!;
    const args = ['generate', run.fixture, '--prompt', 'Hello', '--max-new-tokens', '12', '--temperature', '0'];
    const [plain, adapted] = await Promise.all([runCli(args), runCli([...args, '--adapter', run.dir])]);
    expect(plain.status, plain.stderr).toBe(0);
    expect(adapted.status, adapted.stderr).toBe(0);
    expect(adapted.stderr).toContain(`adapter ${run.checkpoint}`);
    expect(adapted.stdout.startsWith('Hello')).toBe(true);
    expect(adapted.stdout).not.toBe(plain.stdout);
  });

  it('errors: wrong architecture, occupied output folder, a folder that is no adapter', async () => {
    const run = runs.get('rwkv')!;
    const wrong = await runCli(['eval', neox.path, '--text', TEXT, '--adapter', run.dir]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/warning: the adapter .* was trained on .*tiny-rwkv, not on .*tiny-neox-sequential/);
    expect(wrong.stderr).toMatch(/error: .*made for a different base model: its keys look like rwkv\.\*.*gpt_neox\.\*/);
    expect(wrong.stderr).not.toMatch(/internal error|\n\s+at /);

    const occupied = path.join(tmp, 'occupied');
    fs.mkdirSync(occupied);
    fs.writeFileSync(path.join(occupied, 'keep.txt'), 'mine');
    const refused = await runCli(['export', run.dir, '--adapter', occupied]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/exists and is not empty; pass --force/);
    expect(fs.readdirSync(occupied)).toEqual(['keep.txt']);
    const forced = await runCli(['export', run.dir, '--adapter', occupied, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(fs.readdirSync(occupied).sort()).toEqual([ADAPTER_CONFIG, ADAPTER_SAFETENSORS]);
    const self = await runCli(['export', run.dir, '--merged', run.dir, '--force']);
    expect(self.stderr).toMatch(/would replace the input/);
    expect(fs.existsSync(run.checkpoint)).toBe(true);

    const neither = path.join(tmp, 'neither');
    fs.mkdirSync(neither);
    fs.writeFileSync(path.join(neither, 'notes.txt'), 'x');
    for (const args of [['eval', run.fixture, '--text', TEXT, '--adapter', neither], ['export', neither, '--merged', path.join(tmp, 'x')]]) {
      const r = await runCli(args);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/neither a PEFT adapter folder \(no adapter_config\.json\) nor a run folder/);
    }
    const baseless = path.join(tmp, 'baseless');
    fs.cpSync(run.checkpoint, baseless, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(baseless, ADAPTER_CONFIG), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(baseless, ADAPTER_CONFIG), JSON.stringify({ ...config, base_model_name_or_path: '' }));
    const noBase = await runCli(['export', baseless, '--merged', path.join(tmp, 'w')]);
    expect(noBase.status).toBe(1);
    expect(noBase.stderr).toMatch(/names no base model \(base_model_name_or_path\); pass --base MODEL\n$/);

    const both = await runCli(['export', run.dir, '--merged', path.join(tmp, 'y'), '--adapter', path.join(tmp, 'z')]);
    expect(both.stderr).toMatch(/exactly one of --adapter OUT or --merged OUT/);
  });
});
