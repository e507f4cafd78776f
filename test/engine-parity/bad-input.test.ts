/** Input the native engine cannot compute with is one clear InputError, and the engine stays usable. */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { nativeMissing } from '../helpers/native.js';
import { ScaledRandomSource, configOf, openNative, randomBatch } from './engines.js';

const JSON_CONFIG = {
  model_type: 'rwkv', vocab_size: 97, hidden_size: 40, attention_hidden_size: 40, intermediate_size: 72,
  num_hidden_layers: 2, layer_norm_epsilon: 1e-5, rescale_every: 0, context_length: 64,
};

describe.skipIf(nativeMissing)('native engine, bad input', () => {
  it('a token id outside the vocabulary (a tokenizer from another model) is an InputError naming the id and the vocabulary', () => {
    const config = configOf(JSON_CONFIG);
    const opened = openNative({ config, source: () => new ScaledRandomSource(JSON_CONFIG, 5), bits: 16 });
    try {
      const batch = randomBatch(2, 5, 97, 1);
      const bad = { ...batch, input: Int32Array.from(batch.input, (v, i) => (i === 7 ? 97 : v)) };
      let caught: unknown;
      try {
        opened.engine.lossSum(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InputError);
      expect((caught as Error).message).toBe(
        "token ids[7] = 97 is outside [0, 97): the model's vocabulary has 97 entries (does the tokenizer belong to this model?)");
      // nothing leaked into a broken state: a good batch still scores, decoding too
      expect(Number.isFinite(opened.engine.lossSum(batch))).toBe(true);
      const decoder = opened.engine.decoder();
      try {
        expect(() => decoder.feed([97])).toThrow(InputError);
        expect(decoder.feed([3, 5]).length).toBe(97);
      } finally {
        decoder.dispose();
      }
    } finally {
      opened.dispose();
    }
  });
});
