import type { Command } from 'commander';
import { InputError } from '../io/errors.js';
import { generateTokens, TextStreamer } from '../generate/generate.js';
import { readAdapterAt } from '../runtime/adapter.js';
import { openEngine } from '../runtime/open-engine.js';
import { addModelOptions, engineOptions, textFrom, type ModelCommandOptions } from './common.js';
import { floatOption, intOption } from './options.js';

interface GenerateCliOptions extends ModelCommandOptions {
  prompt?: string;
  file?: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  adapter?: string;
}

export function registerGenerate(program: Command): void {
  addModelOptions(
    program
      .command('generate')
      .description('continue a prompt, streaming tokens as they are produced')
      .argument('<model>', 'local model folder or hub repo id (org/name)')
      .option('--prompt <str>', 'prompt text')
      .option('--file <path>', 'read the prompt from a file')
      .option('--adapter <path>', 'LoRA adapter to apply: a PEFT folder, a checkpoint folder or a run folder (its latest checkpoint)')
      .option('--max-new-tokens <n>', 'most tokens to generate', intOption('--max-new-tokens', 1), 128)
      .option('--temperature <t>', 'sampling temperature; 0 is greedy', floatOption('--temperature', 0, 100), 1.0)
      .option('--top-p <p>', 'nucleus sampling mass', floatOption('--top-p', 0, 1, { minExclusive: true }), 1.0)
      .option('--seed <s>', 'random seed for sampling', intOption('--seed', 0, 2 ** 32 - 1), 0),
  ).action(async (model: string, opts: GenerateCliOptions) => {
    const prompt = textFrom({ text: opts.prompt, file: opts.file }, 'prompt');
    const adapterFiles = opts.adapter === undefined ? undefined : await readAdapterAt(opts.adapter);
    const opened = await openEngine(model, { ...engineOptions(opts), ...(adapterFiles !== undefined ? { adapter: adapterFiles } : {}) });
    if (adapterFiles !== undefined) process.stderr.write(`adapter ${adapterFiles.dir}: ${opened.adaptedModules.length} LoRA layers\n`);
    const promptIds = opened.tokenizer.encode(prompt);
    if (promptIds.length === 0) throw new InputError('the prompt is empty after tokenization');
    const streamer = new TextStreamer((ids) => opened.tokenizer.decode(ids));
    const started = performance.now();
    let produced = 0;
    process.stdout.write(prompt);
    for await (const id of generateTokens(opened.engine, promptIds, {
      maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topP: opts.topP, seed: opts.seed,
      stopIds: [opened.tokenizer.eosId],
    })) {
      produced++;
      process.stdout.write(streamer.push(id));
    }
    process.stdout.write(`${streamer.flush()}\n`);
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`${produced} tokens in ${seconds.toFixed(2)} s (${(produced / seconds).toFixed(1)} tokens/s, ${opened.engine.description})\n`);
    opened.dispose();
  });
}
