/**
 * Commands that take no config file hold the linears as a training config without quantization keys
 * would: their option defaults must not drift from the config schema's (a negatable --no-double-quant,
 * for one, defaults to true unless told the schema's default).
 */
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { TrainConfigSchema } from '../../src/config/schema.js';
import { engineOptions } from '../../src/cli/common.js';
import { buildProgram } from '../../src/cli/main.js';

/** What a training config that leaves the quantization section out is trained with. */
const configured = TrainConfigSchema.parse({ model: { name_or_path: 'RWKV/rwkv-4-169m-pile' } }).quantization;

/** The options `args` give a command, read before its action runs (which is never called). */
async function optionsOf(args: readonly string[]): Promise<Record<string, unknown>> {
  const stop = new Error('stop before the action');
  let opts: Record<string, unknown> | undefined;
  const program = buildProgram().hook('preAction', (_: Command, action: Command) => {
    opts = action.opts();
    throw stop;
  });
  await expect(program.parseAsync([...args], { from: 'user' })).rejects.toBe(stop);
  return opts!;
}

describe('commands without a config use the config\'s quantization defaults', () => {
  it('--quantize 4 of generate and eval', () => {
    expect(engineOptions({ backend: 'auto', quantize: '4' }).quantization).toEqual({
      bits: 4, blocksize: configured.blocksize, doubleQuant: configured.double_quant, skipModules: configured.skip_modules,
    });
  });

  it('ditty quantize and ditty inspect --quantize 4 without their options', async () => {
    for (const args of [['quantize', 'model', '--out', 'out'], ['inspect', 'model', '--quantize', '4']]) {
      expect(await optionsOf(args), args[0]).toMatchObject({
        blocksize: configured.blocksize, doubleQuant: configured.double_quant, skipModules: configured.skip_modules,
      });
    }
  });
});
