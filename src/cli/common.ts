import * as fs from 'node:fs';
import { Option, type Command } from 'commander';
import type { Backend } from '../engine/choice.js';
import { InputError } from '../io/errors.js';
import { DEFAULT_QUANTIZATION } from '../quant/options.js';
import type { OpenEngineOptions } from '../runtime/open-engine.js';
import { backendOption } from './options.js';

/** Options shared by commands that load a model. */
export interface ModelCommandOptions {
  revision?: string;
  backend: Backend;
  tokenizer?: string;
  quantize?: '4' | '16';
}

export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--revision <rev>', 'hub branch, tag or commit')
    .addOption(new Option('--backend <name>', 'engine: auto, cpu (native), wasm, js (tfjs pure JavaScript), tensorflow or cuda').default('auto').argParser(backendOption))
    .option('--tokenizer <path>', "tokenizer.json (or a folder with one) to use instead of the model's")
    .addOption(new Option('--quantize <bits>', 'hold the linears as training does: 4 (NF4, double quant) or 16 (float); default: as stored')
      .choices(['4', '16']));
}

/** openEngine options from the shared command options. */
export function engineOptions(opts: ModelCommandOptions): OpenEngineOptions {
  return {
    backend: opts.backend,
    ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
    ...(opts.tokenizer !== undefined ? { tokenizer: opts.tokenizer } : {}),
    ...(opts.quantize !== undefined ? { quantization: { ...DEFAULT_QUANTIZATION, bits: opts.quantize === '4' ? 4 : 16 } } : {}),
  };
}

/** The text of `--text` or `--file`, exactly one of which must be given. */
export function textFrom(opts: { text?: string | undefined; file?: string | undefined }, what: string): string {
  if (opts.text !== undefined && opts.file !== undefined) throw new InputError(`give either --${what} or --file, not both`);
  if (opts.file !== undefined) {
    try {
      return fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new InputError(`--file ${opts.file}: ${(err as Error).message}`);
    }
  }
  if (opts.text === undefined) throw new InputError(`--${what} is required (or --file PATH)`);
  return opts.text;
}

export { contextWindow } from '../models/config.js';
