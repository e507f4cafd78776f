import { beforeAll, describe, expect, it } from 'vitest';
import { TextStreamer } from '../../src/generate/generate.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { sharedPath } from '../helpers/shared.js';

const real = sharedPath('data', 'gpt-neox-20b-tokenizer.json');

describe.skipIf(!real.present)('GPT-NeoX-20B tokenizer', () => {
  let tok: ReturnType<typeof loadTokenizer>;
  beforeAll(() => { tok = loadTokenizer(real.path); });

  it('encodes like the reference', () => {
    expect(tok.encode('Hello world')).toEqual([12092, 1533]);
    expect(tok.eosId).toBe(0);
    expect(tok.vocabSize).toBe(50277);
  });

  it('round-trips text including unicode and whitespace runs', () => {
    const text = 'Résumé:  naïve café — 東京\n\n### Response:\n  x';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('TextStreamer: deltas never split a character, add up to the text, and decode O(n) ids in all', () => {
    const text = 'naïve café — 東京 🎉🎉\n'.repeat(20);
    const ids = tok.encode(text);
    let decoded = 0;
    const streamer = new TextStreamer((part) => { decoded += part.length; return tok.decode(part); });
    const deltas = ids.map((id) => streamer.push(id));
    deltas.push(streamer.flush());
    expect(deltas.join('')).toBe(text);
    expect(deltas.some((d) => d.includes('\uFFFD'))).toBe(false);
    expect(decoded).toBeLessThan(8 * ids.length);
    expect(new TextStreamer((part) => tok.decode(part)).flush()).toBe('');
  });

  it('decodes no ids as the empty text (generate when the first token sampled is EOS)', () => {
    expect(tok.decode([])).toBe('');
  });
});

describe('tokenizer errors', () => {
  it('names a missing file', () => {
    expect(() => loadTokenizer('/nonexistent/dir')).toThrow(/\/nonexistent\/dir: no tokenizer.json/);
  });
});
