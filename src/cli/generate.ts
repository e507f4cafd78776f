import { Option, type Command } from 'commander';
import { DATA_FORMATS } from '../config/schema.js';
import { GENERATION_TEMPLATES, type DataFormat } from '../data/templates.js';
import { InputError } from '../io/errors.js';
import { generateTokens, generationBudget, StopText, TextStreamer } from '../generate/generate.js';
import { readAdapterAt, trainedFormat } from '../runtime/adapter.js';
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
  template?: DataFormat;
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
      .option('--seed <s>', 'random seed for sampling', intOption('--seed', 0, 2 ** 32 - 1), 0)
      .addOption(new Option('--template <name>', 'wrap the prompt as training did: dolly (the prompt is the instruction; the answer ends at "### End") '
        + 'or text (as given); default: the template of the run --adapter comes from (its config.yaml), else text').choices(DATA_FORMATS)),
  ).action(async (model: string, opts: GenerateCliOptions) => {
    const prompt = textFrom({ text: opts.prompt, file: opts.file }, 'prompt');
    const adapterFiles = opts.adapter === undefined ? undefined : await readAdapterAt(opts.adapter);
    const trained = adapterFiles === undefined ? undefined : trainedFormat(adapterFiles.dir);
    const template = GENERATION_TEMPLATES[opts.template ?? trained ?? 'text'];
    const opened = await openEngine(model, { ...engineOptions(opts), ...(adapterFiles !== undefined ? { adapter: adapterFiles } : {}) });
    if (adapterFiles !== undefined) {
      process.stderr.write(`adapter ${adapterFiles.dir}: ${opened.adaptedModules.length} LoRA layers`
        + `${opts.template === undefined && trained !== undefined ? `; ${trained} template, as it was trained (--template text for the prompt as given)` : ''}\n`);
    }
    const text = template.wrap(prompt);
    const promptIds = opened.tokenizer.encode(text);
    if (promptIds.length === 0) throw new InputError('the prompt is empty after tokenization');
    const budget = generationBudget(opened.config, promptIds.length, opts.maxNewTokens);
    if (budget.warning !== undefined) process.stderr.write(`ditty: warning: ${budget.warning}\n`);
    const streamer = new TextStreamer((ids) => opened.tokenizer.decode(ids));
    const stop = new StopText(template.stop);
    const started = performance.now();
    let produced = 0;
    process.stdout.write(text);
    for await (const id of generateTokens(opened.engine, promptIds, {
      maxNewTokens: budget.maxNewTokens, temperature: opts.temperature, topP: opts.topP, seed: opts.seed,
      stopIds: [opened.tokenizer.eosId],
    })) {
      produced++;
      process.stdout.write(stop.push(streamer.push(id)));
      if (stop.done) break;
    }
    process.stdout.write(`${stop.push(streamer.flush())}${stop.flush()}\n`);
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`${produced} tokens in ${seconds.toFixed(2)} s (${(produced / seconds).toFixed(1)} tokens/s, ${opened.engine.description})\n`);
    opened.dispose();
  });
}
