import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { parseModelConfig, readModelConfig } from '../../src/models/config.js';
import { SHARED_DIR } from '../helpers/shared.js';
import { fixturePresent } from './fixtures.js';

const RWKV = { model_type: 'rwkv', hidden_size: 64, num_hidden_layers: 2, vocab_size: 100 };
const NEOX = { model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, intermediate_size: 256, num_hidden_layers: 2, vocab_size: 100 };
const parse = (json: Record<string, unknown>) => parseModelConfig(JSON.stringify(json), 'm/config.json');

describe('parseModelConfig', () => {
  it('reads RWKV with transformers defaults for the optional keys', () => {
    const c = parse({ model_type: 'rwkv', hidden_size: 64, num_hidden_layers: 2, vocab_size: 100, attention_hidden_size: null });
    expect(c).toMatchObject({
      model_type: 'rwkv', hidden_size: 64, attention_hidden_size: 64, intermediate_size: 256, layer_norm_epsilon: 1e-5,
      rescale_every: 6, tie_word_embeddings: false, file: 'm/config.json',
    });
  });

  it('reads GPT-NeoX with transformers defaults for the optional keys', () => {
    const c = parse({ model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, intermediate_size: 256, num_hidden_layers: 2, vocab_size: 100 });
    expect(c).toMatchObject({
      model_type: 'gpt_neox', rotary_pct: 0.25, rotary_emb_base: 10000, layer_norm_eps: 1e-5, use_parallel_residual: true,
      hidden_act: 'gelu', max_position_embeddings: 2048, attention_bias: true,
    });
  });

  it('accepts the newer partial_rotary_factor / rope_theta spelling', () => {
    const c = parse({ model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, intermediate_size: 256, num_hidden_layers: 2, vocab_size: 100, partial_rotary_factor: 1, rope_theta: 500 });
    expect(c).toMatchObject({ rotary_pct: 1, rotary_emb_base: 500 });
  });

  it('names the file and lists the supported types for an unsupported model_type', () => {
    expect(() => parse({ model_type: 'llama' })).toThrow(InputError);
    expect(() => parse({ model_type: 'llama' })).toThrow('m/config.json: model_type: "llama" is not supported (supported: rwkv, gpt_neox)');
    expect(() => parse({})).toThrow('m/config.json: model_type: missing; expected the architecture (supported: rwkv, gpt_neox)');
    expect(() => parse({ model_type: null })).toThrow('m/config.json: model_type: missing; expected the architecture');
    expect(() => parse({ model_type: 7 })).toThrow('m/config.json: model_type: 7 is not supported');
  });

  it('names missing and ill-typed keys', () => {
    expect(() => parse({ model_type: 'rwkv', num_hidden_layers: 2, vocab_size: 100 })).toThrow('m/config.json: hidden_size: missing; expected a positive integer');
    expect(() => parse({ model_type: 'rwkv', hidden_size: '64', num_hidden_layers: 2, vocab_size: 100 })).toThrow('m/config.json: hidden_size: must be a positive integer, found "64"');
    expect(() => parse({ ...NEOX, use_parallel_residual: 'yes' })).toThrow('m/config.json: use_parallel_residual: must be true or false, found "yes"');
    expect(() => parse({ ...NEOX, hidden_act: 'swish' })).toThrow(/m\/config.json: hidden_act: "swish" is not supported \(supported: gelu, /);
    expect(() => parse({ ...NEOX, num_attention_heads: 5 })).toThrow('m/config.json: num_attention_heads: 5 does not divide hidden_size 64');
    expect(() => parse({ ...NEOX, rope_scaling: { type: 'linear', factor: 2 } })).toThrow('m/config.json: rope_scaling: is not supported (expected null), found {"type":"linear","factor":2}');
    expect(() => parseModelConfig('{oops', 'm/config.json')).toThrow(/m\/config.json: not valid JSON/);
  });

  it.each([
    ['a list at the top level', [RWKV], 'the top level: must be a JSON object, found [{'],
    ['a string at the top level', 'rwkv', 'the top level: must be a JSON object, found "rwkv"'],
    ['a zero size', { ...RWKV, num_hidden_layers: 0 }, 'num_hidden_layers: must be a positive integer, found 0'],
    ['a negative size', { ...RWKV, vocab_size: -100 }, 'vocab_size: must be a positive integer, found -100'],
    ['a fractional size', { ...NEOX, intermediate_size: 256.5 }, 'intermediate_size: must be a positive integer, found 256.5'],
    ['a size past 2^53', { ...NEOX, hidden_size: 2 ** 60 }, 'hidden_size: must be a positive integer, found 1152921504606847000'],
    ['an infinite epsilon (1e999 in JSON)', '{"model_type":"rwkv","hidden_size":64,"num_hidden_layers":2,"vocab_size":100,"layer_norm_epsilon":1e999}',
      'layer_norm_epsilon: must be a positive number, found Infinity'],
    ['a zero epsilon', { ...NEOX, layer_norm_eps: 0 }, 'layer_norm_eps: must be a positive number, found 0'],
    ['a negative rescale_every', { ...RWKV, rescale_every: -1 }, 'rescale_every: must be a non-negative integer, found -1'],
    ['a string default-able key', { ...RWKV, context_length: '1024' }, 'context_length: must be a positive integer, found "1024"'],
    ['a string attention size', { ...RWKV, attention_hidden_size: '64' }, 'attention_hidden_size: must be a positive integer, found "64"'],
    ['a number for a flag', { ...RWKV, tie_word_embeddings: 1 }, 'tie_word_embeddings: must be true or false, found 1'],
    ['a rotary_pct above 1', { ...NEOX, rotary_pct: 1.5 }, 'rotary_pct: must be a number in [0, 1], found 1.5'],
    ['a negative partial_rotary_factor', { ...NEOX, partial_rotary_factor: -0.5 }, 'partial_rotary_factor: must be a number in [0, 1], found -0.5'],
    ['a string rope_theta', { ...NEOX, rope_theta: '1e4' }, 'rope_theta: must be a positive number, found "1e4"'],
    ['a zero rotary_emb_base', { ...NEOX, rotary_emb_base: 0 }, 'rotary_emb_base: must be a positive number, found 0'],
    ['a non-string activation', { ...NEOX, hidden_act: 3 }, 'hidden_act: 3 is not supported (supported: gelu, '],
    ['a missing head count', { ...NEOX, num_attention_heads: undefined }, 'num_attention_heads: missing; expected a positive integer'],
    ['a null required key', { ...NEOX, intermediate_size: null }, 'intermediate_size: missing; expected a positive integer'],
  ])('refuses %s in one line naming the file and the key', (_, value, message) => {
    const text = typeof value === 'string' && value.startsWith('{') ? value : JSON.stringify(value);
    let error: unknown;
    try {
      parseModelConfig(text, 'm/config.json');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message.startsWith(`m/config.json: ${message}`)).toBe(true);
    expect((error as Error).message).not.toContain('\n');
  });

  it('ignores unknown keys, keeps the whole file as raw, and takes null as the default', () => {
    const json = { ...NEOX, architectures: ['GPTNeoXForCausalLM'], torch_dtype: 'float16', rope_scaling: null, hidden_act: null, use_cache: true };
    const c = parse(json);
    expect(c).toMatchObject({ model_type: 'gpt_neox', hidden_act: 'gelu', file: 'm/config.json' });
    expect(c.raw).toEqual(json);
    expect(c).not.toHaveProperty('architectures');
    expect(c).not.toHaveProperty('rope_theta');
  });

  it('prefers rotary_pct / rotary_emb_base to the newer spellings when both are there', () => {
    const c = parse({ ...NEOX, rotary_pct: 0.5, partial_rotary_factor: 1, rotary_emb_base: 20000, rope_theta: 500 });
    expect(c).toMatchObject({ rotary_pct: 0.5, rotary_emb_base: 20000 });
    expect(parse({ ...NEOX, rotary_pct: 0 })).toMatchObject({ rotary_pct: 0 });
  });

  it('derives the RWKV sizes from hidden_size only when they are absent', () => {
    expect(parse({ ...RWKV, attention_hidden_size: 32, intermediate_size: 100, rescale_every: 0, tie_word_embeddings: true }))
      .toMatchObject({ attention_hidden_size: 32, intermediate_size: 100, rescale_every: 0, tie_word_embeddings: true });
  });

  it.skipIf(!fixturePresent('tiny-rwkv'))('reads the fixture configs', () => {
    const rwkv = readModelConfig(path.join(SHARED_DIR, 'fixtures/tiny-rwkv/config.json'));
    expect(rwkv).toMatchObject({ model_type: 'rwkv', hidden_size: 32, num_hidden_layers: 3, vocab_size: 50277 });
    const neox = readModelConfig(path.join(SHARED_DIR, 'fixtures/tiny-neox-sequential/config.json'));
    expect(neox).toMatchObject({ model_type: 'gpt_neox', hidden_act: 'gelu_fast', use_parallel_residual: false, rotary_pct: 1 });
    expect(() => readModelConfig('/nonexistent/config.json')).toThrow(/\/nonexistent\/config.json: cannot read the model config/);
  });
});
