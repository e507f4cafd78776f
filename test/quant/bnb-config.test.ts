import { describe, expect, it } from 'vitest';
import { isBnb4bitConfig } from '../../src/quant/bnb-checkpoint.js';
import { InputError } from '../../src/io/errors.js';

/** config.json's quantization_config as transformers saves BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4'). */
const NF4 = { quant_method: 'bitsandbytes', load_in_4bit: true, load_in_8bit: false, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true };
const check = (quantization_config: unknown): boolean => isBnb4bitConfig({ model_type: 'rwkv', quantization_config }, 'm/config.json');

describe('config.json quantization_config', () => {
  it('is a 4-bit checkpoint only for bitsandbytes NF4; no 4-bit quantization declared is not', () => {
    expect(check(NF4)).toBe(true);
    // quant_method absent: bitsandbytes, as transformers before quant_method read it
    expect(check({ load_in_4bit: true, bnb_4bit_quant_type: 'nf4' })).toBe(true);
    expect(isBnb4bitConfig({ model_type: 'rwkv' }, 'm/config.json')).toBe(false);
    expect(check(null)).toBe(false);
    expect(check({ quant_method: 'bitsandbytes', load_in_4bit: false, load_in_8bit: false, bnb_4bit_quant_type: 'fp4' })).toBe(false);
  });

  it('refuses what ditty cannot read in one line naming the file and the key', () => {
    for (const [qc, message] of [
      [5, 'm/config.json: quantization_config: must be a JSON object, found 5'],
      [[], 'm/config.json: quantization_config: must be a JSON object, found []'],
      [{ ...NF4, quant_method: 'gptq' }, 'm/config.json: quantization_config.quant_method: "gptq" is not supported (ditty reads bitsandbytes 4-bit NF4 checkpoints)'],
      [{ ...NF4, load_in_4bit: false, load_in_8bit: true },
        'm/config.json: quantization_config.load_in_8bit: bitsandbytes 8-bit checkpoints are not supported; ditty reads 4-bit NF4 ones'],
      [{ ...NF4, load_in_4bit: 'yes' }, 'm/config.json: quantization_config.load_in_4bit: must be true or false, found "yes"'],
      [{ ...NF4, bnb_4bit_quant_type: 'fp4' }, 'm/config.json: quantization_config.bnb_4bit_quant_type: "fp4" is not supported; ditty reads NF4 only'],
      [{ ...NF4, bnb_4bit_quant_type: null },
        'm/config.json: quantization_config.bnb_4bit_quant_type: missing, which means fp4 (bitsandbytes\' default); ditty reads NF4 only'],
    ] as const) {
      expect(() => check(qc)).toThrow(new InputError(message));
    }
  });
});
