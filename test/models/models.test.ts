import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { parseModelConfig, type GptNeoXConfig, type RwkvConfig } from '../../src/models/config.js';
import { GptNeoXModel } from '../../src/models/gpt-neox.js';
import { buildModel } from '../../src/models/load.js';
import type { BlockwiseCausalLM } from '../../src/models/model.js';
import { RwkvModel } from '../../src/models/rwkv4.js';
import { TEST_BACKEND, useBackend } from '../helpers/backend.js';
import { idsTensor, maxAbsDiff, meanNextTokenLoss } from './fixtures.js';
import { MemorySource, neoxShapes, randomCheckpoint, rwkvShapes } from './memory-source.js';

const V = 40;

function rwkvConfig(extra: Record<string, unknown> = {}): RwkvConfig {
  const json = { model_type: 'rwkv', hidden_size: 12, attention_hidden_size: 8, intermediate_size: 20, num_hidden_layers: 2, vocab_size: V, ...extra };
  return parseModelConfig(JSON.stringify(json), 'rwkv/config.json') as RwkvConfig;
}

function neoxConfig(extra: Record<string, unknown> = {}): GptNeoXConfig {
  const json = {
    model_type: 'gpt_neox', hidden_size: 16, num_attention_heads: 2, intermediate_size: 24, num_hidden_layers: 2, vocab_size: V,
    rotary_pct: 0.5, use_parallel_residual: false, hidden_act: 'gelu_new', attention_bias: false, ...extra,
  };
  return parseModelConfig(JSON.stringify(json), 'neox/config.json') as GptNeoXConfig;
}

const rwkvSource = (): MemorySource => randomCheckpoint(rwkvShapes(12, 8, 20, V, 2), 3);
const neoxSource = (): MemorySource => randomCheckpoint(neoxShapes(16, 24, V, 2, false), 4);

const ROWS = [
  [3, 17, 5, 9, 22, 1, 38, 0, 12, 7, 30],
  [25, 2, 2, 14, 39, 8, 11, 6, 19, 33, 4],
];

/** Logits of the last position after feeding ROWS in chunks of the given sizes through step(). */
function steppedLogits(model: BlockwiseCausalLM, chunks: number[]): Float32Array[] {
  const state = model.initState(ROWS.length);
  const out: Float32Array[] = [];
  let t = 0;
  for (const n of chunks) {
    const input = idsTensor(ROWS.map((r) => r.slice(t, t + n)));
    const { logits } = model.step(input, state);
    out.push(logits.dataSync() as Float32Array);
    tf.dispose([input, logits]);
    t += n;
  }
  state.dispose();
  return out;
}

describe(`models on random weights (${TEST_BACKEND})`, () => {
  beforeAll(async () => {
    await useBackend();
  });

  const builders: Array<[string, () => BlockwiseCausalLM]> = [
    ['rwkv (attention size != hidden size)', () => buildModel(rwkvConfig(), rwkvSource())],
    ['gpt_neox (partial rotary 4 of 8, no attention bias, sequential)', () => buildModel(neoxConfig(), neoxSource())],
    ['gpt_neox (parallel, exact gelu)', () => buildModel(neoxConfig({ use_parallel_residual: true, hidden_act: 'gelu', rotary_pct: 0.25 }), neoxSource())],
  ];

  it.each(builders)('%s: step() in chunks equals the full forward for a batch of 2', (_name, build) => {
    const model = build();
    const T = ROWS[0]!.length;
    const full = tf.tidy(() => model.forward(idsTensor(ROWS)).dataSync() as Float32Array);
    const chunks = [4, 1, 3, 1, 1, 1];
    const stepped = steppedLogits(model, chunks);
    let end = 0;
    chunks.forEach((n, i) => {
      end += n;
      const want = ROWS.map((_r, b) => full.subarray((b * T + end - 1) * V, (b * T + end) * V));
      const got = stepped[i]!;
      want.forEach((w, b) => expect(maxAbsDiff(got.subarray(b * V, (b + 1) * V), w)).toBeLessThan(1e-4));
    });
    model.dispose();
  });

  it.each(builders)('%s: causal (earlier logits ignore later tokens) and dispose frees everything', (_name, build) => {
    const before = tf.memory().numTensors;
    const model = build();
    tf.tidy(() => {
      const a = model.forward(idsTensor([ROWS[0]!]));
      const changed = [...ROWS[0]!.slice(0, 6), ...ROWS[1]!.slice(6)];
      const b = model.forward(idsTensor([changed]));
      expect(maxAbsDiff(tf.slice(a, [0, 0, 0], [1, 6, V]).dataSync(), tf.slice(b, [0, 0, 0], [1, 6, V]).dataSync())).toBeLessThan(1e-6);
      expect(maxAbsDiff(tf.slice(a, [0, 6, 0], [1, 1, V]).dataSync(), tf.slice(b, [0, 6, 0], [1, 1, V]).dataSync())).toBeGreaterThan(1e-3);
    });
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('lists every linear by module path in module order, with its shape', () => {
    const rwkv = buildModel(rwkvConfig(), rwkvSource());
    const paths = [...rwkv.linears.keys()];
    expect(paths.slice(0, 8)).toEqual([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.value', 'rwkv.blocks.0.attention.receptance', 'rwkv.blocks.0.attention.output',
      'rwkv.blocks.0.feed_forward.key', 'rwkv.blocks.0.feed_forward.receptance', 'rwkv.blocks.0.feed_forward.value', 'rwkv.blocks.1.attention.key',
    ]);
    expect(paths.at(-1)).toBe('head');
    const key = rwkv.linears.get('rwkv.blocks.1.attention.key')!;
    expect([key.inFeatures, key.outFeatures, key.hasBias]).toEqual([12, 8, false]);
    expect(rwkv.otherParams.has('rwkv.blocks.0.attention.time_decay')).toBe(true);
    rwkv.dispose();

    const neox = buildModel(neoxConfig({ attention_bias: true }), randomCheckpoint(neoxShapes(16, 24, V, 2, true)));
    expect([...neox.linears.keys()].slice(0, 5)).toEqual([
      'gpt_neox.layers.0.attention.query_key_value', 'gpt_neox.layers.0.attention.dense',
      'gpt_neox.layers.0.mlp.dense_h_to_4h', 'gpt_neox.layers.0.mlp.dense_4h_to_h', 'gpt_neox.layers.1.attention.query_key_value',
    ]);
    const qkv = neox.linears.get('gpt_neox.layers.0.attention.query_key_value')!;
    expect([qkv.inFeatures, qkv.outFeatures, qkv.hasBias]).toEqual([16, 48, true]);
    expect(neox.linears.get('embed_out')!.hasBias).toBe(false);
    neox.dispose();
  });

  it('forward goes through the linears map, so replacing an entry changes the output', () => {
    const model = buildModel(rwkvConfig(), rwkvSource());
    const ids = idsTensor([ROWS[0]!]);
    const before = tf.tidy(() => model.forward(ids).dataSync());
    const original = model.linears.get('head')!;
    model.linears.set('head', { ...original, path: 'head', apply: (x: tf.Tensor) => tf.mul(original.apply(x), 2), dispose: () => original.dispose() });
    const after = tf.tidy(() => model.forward(ids).dataSync());
    expect(after[5]).toBeCloseTo(2 * before[5]!, 4);
    model.dispose();
    ids.dispose();
  });

  it('padded vocabulary: ids past the tokenizer size are just rows', () => {
    const model = buildModel(neoxConfig(), neoxSource());
    const logits = tf.tidy(() => model.forward(idsTensor([[V - 1, 0, V - 2]])));
    expect(logits.shape).toEqual([1, 3, V]);
    logits.dispose();
    model.dispose();
  });
});

describe('weight loading errors', () => {
  beforeAll(async () => {
    await useBackend();
  });

  it('names a missing tensor with its expected shape and the source, and frees what it read', () => {
    const source = rwkvSource();
    source.tensors.delete('rwkv.blocks.1.attention.value.weight');
    const before = tf.memory().numTensors;
    expect(() => RwkvModel.load(rwkvConfig(), source)).toThrow(InputError);
    expect(() => RwkvModel.load(rwkvConfig(), source)).toThrow(
      'memory:test-checkpoint: missing tensor "rwkv.blocks.1.attention.value.weight" (expected shape [8, 12])');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names a tensor whose shape does not match the config', () => {
    const source = neoxSource();
    source.tensors.set('gpt_neox.layers.0.mlp.dense_h_to_4h.weight', { shape: [24, 15], data: new Float32Array(24 * 15) });
    expect(() => GptNeoXModel.load(neoxConfig(), source)).toThrow(
      'memory:test-checkpoint: tensor "gpt_neox.layers.0.mlp.dense_h_to_4h.weight" has shape [24, 15], expected [24, 16] from the model config');
  });

  it('refuses a non-float weight (a quantized checkpoint)', () => {
    const source = neoxSource();
    const head = source.tensors.get('embed_out.weight')!;
    source.tensors.set('embed_out.weight', { ...head, dtype: 'U8' });
    expect(() => GptNeoXModel.load(neoxConfig(), source)).toThrow(/"embed_out.weight" is U8; expected a float weight/);
  });

  it('ignores the old GPT-NeoX buffers silently and lists other extra tensors as warnings', () => {
    const source = neoxSource();
    const extra = { shape: [2], data: new Float32Array(2) };
    for (const name of ['gpt_neox.layers.0.attention.bias', 'gpt_neox.layers.0.attention.masked_bias', 'gpt_neox.layers.1.attention.rotary_emb.inv_freq', 'lm_extra.weight']) {
      source.tensors.set(name, extra);
    }
    const model = GptNeoXModel.load(neoxConfig(), source);
    expect(model.warnings).toEqual(['memory:test-checkpoint: ignoring unexpected tensor "lm_extra.weight"']);
    model.dispose();
  });

  it('uses the embedding as the head when tie_word_embeddings is set and the head is absent', () => {
    const source = rwkvSource();
    source.tensors.delete('head.weight');
    expect(() => RwkvModel.load(rwkvConfig(), source)).toThrow(/missing tensor "head.weight"/);
    const model = RwkvModel.load(rwkvConfig({ tie_word_embeddings: true }), source);
    const head = model.linears.get('head')!;
    expect([head.outFeatures, head.inFeatures]).toEqual([V, 12]);
    const emb = model.otherParams.get('rwkv.embeddings.weight')!;
    const x = tf.tidy(() => head.apply(tf.oneHot(tf.tensor1d([0], 'int32'), 12)).dataSync());
    expect(maxAbsDiff(x, tf.tidy(() => tf.slice(emb, [0, 0], [V, 1]).dataSync()))).toBe(0);
    model.dispose();
  });
});

describe('meanNextTokenLoss', () => {
  beforeAll(async () => {
    await useBackend();
  });

  it('is the mean of logsumexp(logits[t]) - logits[t, ids[t+1]] over rows and t < T-1', () => {
    const logits = [[[1, 2, 3], [0, 0, 5], [9, 9, 9]], [[-1, 0, 1], [2, 2, 0], [7, 1, 1]]];
    const ids = [[0, 2, 1], [1, 0, 2]];
    const lse = (r: number[]): number => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    let want = 0;
    for (let b = 0; b < 2; b++) for (let t = 0; t < 2; t++) want += lse(logits[b]![t]!) - logits[b]![t]![ids[b]![t + 1]!]!;
    const got = tf.tidy(() => meanNextTokenLoss(tf.tensor3d(logits), idsTensor(ids)).dataSync()[0]!);
    expect(got).toBeCloseTo(want / 4, 5);
    expect(() => meanNextTokenLoss(tf.zeros([1, 1, 3]) as tf.Tensor3D, idsTensor([[0]]))).toThrow(/at least 2 positions/);
  });
});
