import { beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { isTarget, matchesName, matchTargets, patternValue } from '../../src/lora/match.js';
import { describeLinears } from '../../src/io/module-names.js';
import { useBackend } from '../helpers/backend.js';
import { neoxLinears, rwkvLinears, rwkvOtherNames } from './helpers.js';

beforeAll(async () => { await useBackend(); });

function errorOf(f: () => unknown): InputError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  return expect.fail('expected an InputError');
}

describe('PEFT target matching', () => {
  it('matches a whole path or a "."-separated suffix, never a partial name', () => {
    expect(matchesName('rwkv.blocks.0.attention.key', 'key')).toBe(true);
    expect(matchesName('rwkv.blocks.0.attention.key', 'attention.key')).toBe(true);
    expect(matchesName('rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.key')).toBe(true);
    expect(matchesName('rwkv.blocks.0.attention.xkey', 'key')).toBe(false);
    expect(matchesName('rwkv.blocks.0.attention.key', 'xkey')).toBe(false);
    expect(matchesName('rwkv.blocks.0.attention.key', 'ttention.key')).toBe(false);
    expect(matchesName('head', 'head')).toBe(true);
  });

  it('selects RWKV and GPT-NeoX linears in module order', () => {
    const rwkv = rwkvLinears();
    expect(matchTargets(rwkv, ['key', 'value', 'receptance'])).toEqual([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.value', 'rwkv.blocks.0.attention.receptance',
      'rwkv.blocks.0.feed_forward.key', 'rwkv.blocks.0.feed_forward.receptance', 'rwkv.blocks.0.feed_forward.value',
      'rwkv.blocks.1.attention.key', 'rwkv.blocks.1.attention.value', 'rwkv.blocks.1.attention.receptance',
      'rwkv.blocks.1.feed_forward.key', 'rwkv.blocks.1.feed_forward.receptance', 'rwkv.blocks.1.feed_forward.value',
    ]);
    expect(matchTargets(rwkv, ['attention.key'])).toEqual(['rwkv.blocks.0.attention.key', 'rwkv.blocks.1.attention.key']);
    const neox = neoxLinears();
    expect(matchTargets(neox, ['query_key_value'])).toEqual([
      'gpt_neox.layers.0.attention.query_key_value', 'gpt_neox.layers.1.attention.query_key_value',
    ]);
  });

  it('treats a string as a regex that must match the whole path (re.fullmatch)', () => {
    const rwkv = rwkvLinears();
    expect(matchTargets(rwkv, '.*attention\\.(key|value)')).toEqual([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.0.attention.value', 'rwkv.blocks.1.attention.key', 'rwkv.blocks.1.attention.value',
    ]);
    expect(isTarget('rwkv.blocks.0.attention.key', 'attention\\.key')).toBe(false); // not a full match
    expect(errorOf(() => matchTargets(rwkv, 'nothing.*')).message).toMatch(/target_modules regex "nothing\.\*" matches no module/);
    expect(errorOf(() => matchTargets(rwkv, '(')).message).toMatch(/cannot use the regular expression "\("/);
  });

  it('applies layers_to_transform and layers_pattern to suffix matches as PEFT does', () => {
    const rwkv = rwkvLinears(3);
    expect(matchTargets(rwkv, ['attention.key'], { layersToTransform: [0, 2] })).toEqual([
      'rwkv.blocks.0.attention.key', 'rwkv.blocks.2.attention.key',
    ]);
    expect(matchTargets(rwkv, ['attention.key'], { layersToTransform: 1, layersPattern: 'blocks' })).toEqual(['rwkv.blocks.1.attention.key']);
    expect(errorOf(() => matchTargets(rwkv, ['attention.key'], { layersToTransform: 1, layersPattern: 'layers' })).message)
      .toMatch(/layers_to_transform 1 leaves no linear layer/);
    // head has no layer index: a suffix match is dropped, an exact entry is kept (PEFT's order of checks)
    expect(matchTargets(rwkv, ['head', 'attention.key'], { layersToTransform: [0] })).toEqual(['rwkv.blocks.0.attention.key', 'head']);
  });

  it('reports a target that matches nothing with the linear names that exist', () => {
    const rwkv = rwkvLinears();
    const msg = errorOf(() => matchTargets(rwkv, ['key', 'xkey', 'query'])).message;
    expect(msg).toMatch(/target "xkey" matches no module of the model; target "query" matches no module of the model\./);
    expect(msg).toContain('15 linear layers by name: key ×4, value ×4, receptance ×4, output ×2, head ×1');
    expect(msg).toContain('e.g. rwkv.blocks.0.attention.key, rwkv.blocks.0.attention.value');
  });

  it('says when a target names something that is not a linear', () => {
    const rwkv = rwkvLinears();
    const others = { otherNames: rwkvOtherNames() };
    expect(errorOf(() => matchTargets(rwkv, ['time_decay'], others)).message)
      .toMatch(/target "time_decay" names rwkv\.blocks\.0\.attention\.time_decay, which is not a linear layer/);
    expect(errorOf(() => matchTargets(rwkv, ['key', 'ln1'], others)).message)
      .toMatch(/target "ln1" names rwkv\.blocks\.0\.ln1, which is not a linear layer[^]*key ×4/);
    // containers of linears are known without otherNames
    expect(errorOf(() => matchTargets(rwkv, ['attention'])).message)
      .toMatch(/target "attention" names rwkv\.blocks\.0\.attention, which is not a linear layer/);
  });

  it('describes large models compactly', () => {
    const paths = Array.from({ length: 40 }, (_, i) => ['key', 'value'].map((n) => `rwkv.blocks.${i}.attention.${n}`)).flat();
    const d = describeLinears(paths);
    expect(d).toBe("The model's 80 linear layers by name: key ×40, value ×40; e.g. rwkv.blocks.0.attention.key, rwkv.blocks.0.attention.value");
  });

  it('looks up rank_pattern / alpha_pattern keys like PEFT', () => {
    const pattern = { 'attention.key': 4, 'blocks\\.1\\..*value': 2 };
    expect(patternValue(pattern, 'rwkv.blocks.0.attention.key', 8)).toBe(4);
    expect(patternValue(pattern, 'rwkv.blocks.0.feed_forward.key', 8)).toBe(8);
    expect(patternValue(pattern, 'rwkv.blocks.1.attention.value', 8)).toBe(2);
    expect(patternValue(undefined, 'x', 8)).toBe(8);
  });
});
