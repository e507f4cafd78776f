import { describe, expect, it } from 'vitest';
import { keysAt } from '../../src/config/describe.js';
import { configReferenceMarkdown, describeConfigSchema } from '../../src/config/reference.js';
import { editDistance, suggestKey, suggestValue } from '../../src/config/suggest.js';

describe('config reference', () => {
  const sections = describeConfigSchema();
  const rows = sections.flatMap((s) => s.keys);

  it('lists every schema key, each with a description and an allowed-values text', () => {
    const schemaKeys = keysAt([]).flatMap((s) => (keysAt([s]).length > 0 ? keysAt([s]).map((k) => `${s}.${k}`) : [s]));
    expect(rows.map((r) => r.key).sort()).toEqual(schemaKeys.sort());
    for (const row of rows) {
      expect(row.description, row.key).toMatch(/^[A-Z].{10,}\.$/);
      expect(row.type, row.key).not.toBe('a value');
    }
    for (const s of sections) expect(s.description, s.section).not.toBe('');
  });

  it('shows defaults', () => {
    const byKey = new Map(rows.map((r) => [r.key, r]));
    expect(byKey.get('model.name_or_path')).toMatchObject({ default: 'required', defaultIsValue: false });
    expect(byKey.get('lora.r')).toMatchObject({ type: 'an integer ≥ 1', default: '8', defaultIsValue: true });
    expect(byKey.get('training.lr_scheduler')).toMatchObject({ type: 'one of constant, linear, cosine', default: 'constant' });
    expect(byKey.get('lora.target_modules')?.default).toBe('by architecture');
  });

  it('renders a markdown table per section', () => {
    const md = configReferenceMarkdown();
    expect(md).toContain('### `lora`');
    expect(md).toContain('| key | allowed | default | description |');
    expect(md).toContain('| `lora.r` | an integer ≥ 1 | `8` | LoRA rank: ');
    for (const row of rows) expect(md).toContain(`| \`${row.key}\` |`);
  });
});

describe('suggestions', () => {
  it('edit distance counts adjacent swaps as one edit', () => {
    expect(editDistance('cosin', 'cosine')).toBe(1);
    expect(editDistance('rnak', 'rank')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('maps other tools\' names to ditty\'s', () => {
    expect(suggestKey(['lora'], 'lora_alpha')).toBe('alpha');
    expect(suggestKey(['training'], 'micro_batch_size')).toBe('batch_size');
    expect(suggestKey([], 'sequence_len')).toBe('data.block_size');
    expect(suggestKey(['training'], 'zzzzzz')).toBeUndefined();
    expect(suggestValue('bfloat16', ['fp32', 'bf16', 'fp16'])).toBe('bf16');
    expect(suggestValue('Cosine', ['constant', 'linear', 'cosine'])).toBe('cosine');
  });
});
