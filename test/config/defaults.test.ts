import { describe, expect, it } from 'vitest';
import { DATA_DEFAULTS, DEFAULT_TARGET_MODULES, TrainConfigSchema } from '../../src/config/schema.js';
import { defaultLoraConfig } from '../../src/lora/config.js';
import { DEFAULT_QUANTIZATION } from '../../src/quant/options.js';

describe('library defaults are the config schema\'s', () => {
  const parsed = TrainConfigSchema.parse({ model: { name_or_path: 'RWKV/rwkv-4-169m-pile' } });

  it('quantization, LoRA and data defaults equal what a config without those keys resolves to', () => {
    expect(DEFAULT_QUANTIZATION).toEqual({
      bits: parsed.quantization.bits, doubleQuant: parsed.quantization.double_quant,
      blocksize: parsed.quantization.blocksize, skipModules: parsed.quantization.skip_modules,
    });
    expect(defaultLoraConfig('rwkv')).toMatchObject({
      r: parsed.lora.r, alpha: parsed.lora.alpha, dropout: parsed.lora.dropout, useRslora: parsed.lora.use_rslora,
      targetModules: [...DEFAULT_TARGET_MODULES.rwkv],
    });
    expect(DATA_DEFAULTS).toEqual(parsed.data);
  });
});
