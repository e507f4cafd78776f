import type { Command } from 'commander';
import { InputError } from '../io/errors.js';
import { scoreTokens } from '../eval/score.js';
import { openModel } from '../runtime/open-model.js';
import { addModelOptions, contextWindow, textFrom, type ModelCommandOptions } from './common.js';
import { intOption } from './options.js';

interface EvalOptions extends ModelCommandOptions {
  text?: string;
  file?: string;
  json?: boolean;
  window?: number;
}

export function registerEval(program: Command): void {
  addModelOptions(
    program
      .command('eval')
      .description('mean next-token cross-entropy and perplexity of a text')
      .argument('<model>', 'local model folder or hub repo id (org/name)')
      .option('--text <str>', 'text to score')
      .option('--file <path>', 'read the text from a file')
      .option('--window <n>', 'score in windows of at most n tokens (default: the model context length)', intOption('--window', 2))
      .option('--json', 'print one JSON object'),
  ).action(async (model: string, opts: EvalOptions) => {
    const text = textFrom(opts, 'text');
    const opened = await openModel(model, { ...opts, progress: !opts.json });
    const ids = opened.tokenizer.encode(text);
    if (ids.length < 2) throw new InputError(`the text has ${ids.length} token(s); at least 2 are needed to score it`);
    const score = scoreTokens(opened.model, ids, opts.window ?? contextWindow(opened.config));
    opened.model.dispose();
    const tokensPerSecond = score.tokens / score.seconds;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({
        model, loss: score.loss, perplexity: score.perplexity, tokens: score.tokens,
        predicted_tokens: score.predicted, windows: score.windows, tokens_per_s: tokensPerSecond,
        seconds: score.seconds, load_seconds: opened.loadSeconds, backend: opened.backend,
      })}\n`);
      return;
    }
    process.stdout.write(`loss ${score.loss.toFixed(6)}  perplexity ${score.perplexity.toFixed(4)}  tokens ${score.tokens}\n`);
    process.stderr.write(`${score.predicted} predicted positions in ${score.windows} window(s), `
      + `${tokensPerSecond.toFixed(1)} tokens/s on ${opened.backend}, weights loaded in ${opened.loadSeconds.toFixed(2)} s\n`);
  });
}
