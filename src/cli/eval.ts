import type { Command } from 'commander';
import { InputError } from '../io/errors.js';
import { scoreTokens } from '../eval/score.js';
import { applyAdapter, readAdapterAt } from '../runtime/adapter.js';
import { openModel } from '../runtime/open-model.js';
import { addModelOptions, contextWindow, openOptions, textFrom, type ModelCommandOptions } from './common.js';
import { intOption } from './options.js';

interface EvalOptions extends ModelCommandOptions {
  text?: string;
  file?: string;
  json?: boolean;
  window?: number;
  adapter?: string;
}

export function registerEval(program: Command): void {
  addModelOptions(
    program
      .command('eval')
      .description('mean next-token cross-entropy and perplexity of a text')
      .argument('<model>', 'local model folder or hub repo id (org/name)')
      .option('--text <str>', 'text to score')
      .option('--file <path>', 'read the text from a file')
      .option('--adapter <path>', 'LoRA adapter to apply: a PEFT folder, a checkpoint folder or a run folder (its latest checkpoint)')
      .option('--window <n>', 'score in windows of at most n tokens (default: the model context length)', intOption('--window', 2))
      .option('--json', 'print one JSON object'),
  ).action(async (model: string, opts: EvalOptions) => {
    const text = textFrom(opts, 'text');
    const adapterFiles = opts.adapter === undefined ? undefined : await readAdapterAt(opts.adapter);
    const opened = await openModel(model, { ...openOptions(opts), progress: !opts.json });
    const adapter = adapterFiles === undefined ? undefined : applyAdapter(opened, adapterFiles);
    const ids = opened.tokenizer.encode(text);
    if (ids.length < 2) throw new InputError(`the text has ${ids.length} token(s); at least 2 are needed to score it`);
    const score = scoreTokens(opened.model, ids, opts.window ?? contextWindow(opened.config));
    opened.model.dispose();
    const tokensPerSecond = score.tokens / score.seconds;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({
        model, ...(adapter ? { adapter: adapter.folder } : {}), loss: score.loss, perplexity: score.perplexity, tokens: score.tokens,
        predicted_tokens: score.predicted, windows: score.windows, tokens_per_s: tokensPerSecond,
        seconds: score.seconds, load_seconds: opened.loadSeconds, backend: opened.backend,
      })}\n`);
      return;
    }
    if (adapter) process.stderr.write(`adapter ${adapter.folder}: ${adapter.layers.length} LoRA layers\n`);
    process.stdout.write(`loss ${score.loss.toFixed(6)}  perplexity ${score.perplexity.toFixed(4)}  tokens ${score.tokens}\n`);
    process.stderr.write(`${score.predicted} predicted positions in ${score.windows} window(s), `
      + `${tokensPerSecond.toFixed(1)} tokens/s on ${opened.backend}, weights loaded in ${opened.loadSeconds.toFixed(2)} s\n`);
  });
}
