import { describe, expect, it } from 'vitest';
import { describeBase } from '../../src/export/base-checkpoint.js';
import { InputError } from '../../src/io/errors.js';
import { MemorySource } from '../models/memory-source.js';

const W = 'rwkv.blocks.0.attention.key.weight';

/** Text as a Float32Array's bytes (MemorySource holds float32 data), padded with spaces. */
function textBytes(text: string): Float32Array {
  const bytes = new TextEncoder().encode(text.padEnd(Math.ceil(text.length / 4) * 4, ' '));
  return new Float32Array(bytes.buffer);
}

function baseWithQuantState(json: string): MemorySource {
  return new MemorySource(new Map([
    [W, { shape: [32, 1], data: new Float32Array(8), dtype: 'U8' as const }],
    [`${W}.quant_state.bitsandbytes__nf4`, { shape: [textBytes(json).byteLength], data: textBytes(json), dtype: 'U8' as const }],
  ]));
}

describe('describeBase', () => {
  it('reads the [out, in] shape of a 4-bit linear from its quant state', () => {
    const base = describeBase(baseWithQuantState('{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [8, 8]}'), 'rwkv');
    expect(base.quantized).toEqual(new Set(['rwkv.blocks.0.attention.key']));
    expect(base.linears.get('rwkv.blocks.0.attention.key')).toMatchObject({ outFeatures: 8, inFeatures: 8 });
    expect(base.isQuantState(`${W}.quant_state.bitsandbytes__nf4`)).toBe(true);
  });

  it('refuses a quant state that is not JSON or holds no 2-D shape, naming the checkpoint', () => {
    for (const [json, message] of [
      ['not json', /^memory:test-checkpoint: .*bitsandbytes__nf4: not UTF-8 JSON/],
      ['{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [64]}', /^memory:test-checkpoint: .*"shape" must be \[out, in\], got \[64\]/],
    ] as const) {
      const err = (() => { try { describeBase(baseWithQuantState(json), 'rwkv'); } catch (e) { return e; } return undefined; })();
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
    }
  });
});
