import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { parseModelConfig, readModelConfig } from '../../src/models/config.js';
import { SHARED_DIR } from '../helpers/shared.js';
import { fixturePresent } from './fixtures.js';

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
    expect(() => parse({ model_type: 'llama' })).toThrow('m/config.json: model_type "llama" is not supported (supported: rwkv, gpt_neox)');
    expect(() => parse({})).toThrow('m/config.json: "model_type" is missing (expected a string)');
  });

  it('names missing and ill-typed keys', () => {
    expect(() => parse({ model_type: 'rwkv', num_hidden_layers: 2, vocab_size: 100 })).toThrow('m/config.json: "hidden_size" is missing (expected a positive integer)');
    expect(() => parse({ model_type: 'rwkv', hidden_size: '64', num_hidden_layers: 2, vocab_size: 100 })).toThrow('m/config.json: "hidden_size" must be a positive integer, found "64"');
    const neox = { model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, intermediate_size: 256, num_hidden_layers: 2, vocab_size: 100 };
    expect(() => parse({ ...neox, use_parallel_residual: 'yes' })).toThrow('"use_parallel_residual" must be true or false, found "yes"');
    expect(() => parse({ ...neox, hidden_act: 'swish' })).toThrow(/"hidden_act" "swish" is not supported \(supported: gelu, /);
    expect(() => parse({ ...neox, num_attention_heads: 5 })).toThrow('"num_attention_heads" 5 does not divide hidden_size 64');
    expect(() => parse({ ...neox, rope_scaling: { type: 'linear', factor: 2 } })).toThrow('"rope_scaling" is not supported');
    expect(() => parseModelConfig('{oops', 'm/config.json')).toThrow(/m\/config.json: not valid JSON/);
  });

  it.skipIf(!fixturePresent('tiny-rwkv'))('reads the fixture configs', () => {
    const rwkv = readModelConfig(path.join(SHARED_DIR, 'fixtures/tiny-rwkv/config.json'));
    expect(rwkv).toMatchObject({ model_type: 'rwkv', hidden_size: 32, num_hidden_layers: 3, vocab_size: 50277 });
    const neox = readModelConfig(path.join(SHARED_DIR, 'fixtures/tiny-neox-sequential/config.json'));
    expect(neox).toMatchObject({ model_type: 'gpt_neox', hidden_act: 'gelu_fast', use_parallel_residual: false, rotary_pct: 1 });
    expect(() => readModelConfig('/nonexistent/config.json')).toThrow(/\/nonexistent\/config.json: cannot read the model config/);
  });
});
