import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import type { TrainConfig } from '../config/index.js';
import { expected } from '../config/problems.js';
import { DATA_DEFAULTS, DATA_FORMATS, DataSectionSchema } from '../config/schema.js';
import type { DataFormat } from '../data/templates.js';
import { beforeAfterJson, formatBeforeAfter } from '../eval/before-after.js';
import { loadEvalExamples, type EvalDataConfig } from '../eval/category-loss.js';
import { BEFORE_AFTER_FILE, configOfAdapter, evaluateBeforeAfter, validationSplitOf, writeBeforeAfter } from '../eval/held-out.js';
import { METRICS_FILE, REPORT_FILE, writeReport } from '../report/run-report.js';
import { InputError } from '../io/errors.js';
import { scoreTokens } from '../eval/score.js';
import { readAdapterAt } from '../runtime/adapter.js';
import { openEngine } from '../runtime/open-engine.js';
import { addModelOptions, contextWindow, engineOptions, textFrom, type ModelCommandOptions } from './common.js';
import { intOption } from './options.js';

interface EvalOptions extends ModelCommandOptions {
  text?: string;
  file?: string;
  json?: boolean;
  window?: number;
  adapter?: string;
  dataset?: string;
  format: DataFormat;
  maxRows?: number;
  validationSplit?: boolean;
}

export function registerEval(program: Command): void {
  addModelOptions(
    program
      .command('eval')
      .description('mean next-token cross-entropy and perplexity of a text; with --dataset and --adapter, base vs adapted loss per category')
      .argument('<model>', 'local model folder or hub repo id (org/name)')
      .option('--text <str>', 'text to score')
      .option('--file <path>', 'read the text from a file')
      .option('--adapter <path>', 'LoRA adapter to apply: a PEFT folder, a checkpoint folder or a run folder (its latest checkpoint)')
      .option('--dataset <file|hub-id>', 'score a held-out set (.jsonl/.json/.parquet or a hub dataset id) in the training template, '
        + 'response tokens only, for the base and the adapted model (needs --adapter)')
      .addOption(new Option('--format <format>', 'row format of --dataset').choices(DATA_FORMATS).default(DATA_DEFAULTS.format))
      .option('--max-rows <n>', 'score only the first n rows of --dataset', intOption('--max-rows', 1))
      .option('--validation-split', "instead of --dataset: the rows the adapter's run held out for validation, with the run's quantization (from its config.yaml)")
      .option('--window <n>', 'score in windows of at most n tokens (default: the model context length)', intOption('--window', 2))
      .option('--json', 'print one JSON object'),
  ).action(async (model: string, opts: EvalOptions) => {
    if (opts.dataset !== undefined || opts.validationSplit) {
      await evalBeforeAfter(model, opts);
      return;
    }
    const text = textFrom(opts, 'text');
    const adapterFiles = opts.adapter === undefined ? undefined : await readAdapterAt(opts.adapter);
    const opened = await openEngine(model, { ...engineOptions(opts), progress: !opts.json, ...(adapterFiles ? { adapter: adapterFiles } : {}) });
    const adapter = adapterFiles === undefined ? undefined : { folder: adapterFiles.dir, layers: opened.adaptedModules };
    let score;
    try {
      const ids = opened.tokenizer.encode(text);
      if (ids.length < 2) throw new InputError(`the text has ${ids.length} token(s); at least 2 are needed to score it`);
      score = scoreTokens(opened.engine, ids, opts.window ?? contextWindow(opened.config));
    } finally {
      opened.dispose();
    }
    const tokensPerSecond = score.tokens / score.seconds;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({
        model, ...(adapter ? { adapter: adapter.folder } : {}), loss: score.loss, perplexity: score.perplexity, tokens: score.tokens,
        predicted_tokens: score.predicted, windows: score.windows, tokens_per_s: tokensPerSecond,
        seconds: score.seconds, load_seconds: opened.loadSeconds, backend: opened.engine.description,
      })}\n`);
      return;
    }
    if (adapter) process.stderr.write(`adapter ${adapter.folder}: ${adapter.layers.length} LoRA layers\n`);
    process.stdout.write(`loss ${score.loss.toFixed(6)}  perplexity ${score.perplexity.toFixed(4)}  tokens ${score.tokens}\n`);
    process.stderr.write(`${score.predicted} predicted positions in ${score.windows} window(s), `
      + `${tokensPerSecond.toFixed(1)} tokens/s on ${opened.engine.description}, weights loaded in ${opened.loadSeconds.toFixed(2)} s\n`);
  });
}

/** `ditty eval MODEL --adapter RUN --dataset FILE | --validation-split`: the before/after table per category. */
async function evalBeforeAfter(model: string, opts: EvalOptions): Promise<void> {
  if (opts.text !== undefined || opts.file !== undefined) throw new InputError('give either --dataset/--validation-split or --text/--file, not both');
  if (opts.dataset !== undefined && opts.validationSplit) throw new InputError('give either --dataset or --validation-split, not both');
  if (opts.adapter === undefined) throw new InputError('--dataset and --validation-split compare the base model with an adapter: give --adapter RUN_OR_CHECKPOINT too');
  const adapterFiles = await readAdapterAt(opts.adapter);
  let data: EvalDataConfig;
  let config: TrainConfig | undefined;
  if (opts.dataset !== undefined) {
    data = { data: datasetOption(opts.dataset, opts) };
  } else {
    config = configOfAdapter(adapterFiles.dir);
    data = validationSplitOf(config);
  }
  const what = opts.dataset ?? `the validation split of ${data.data.dataset}`;
  // the run's rows are scored with the linears held as the run held them, unless --quantize says otherwise
  const q = config?.quantization;
  const quantization = opts.quantize === undefined && q !== undefined
    ? { quantization: { bits: q.bits, doubleQuant: q.double_quant, blocksize: q.blocksize, skipModules: q.skip_modules } } : {};
  const opened = await openEngine(model, { ...engineOptions(opts), ...quantization, progress: !opts.json, adapter: adapterFiles });
  try {
    const examples = await loadEvalExamples(data, opened.tokenizer);
    const window = opts.window ?? contextWindow(opened.config);
    const started = performance.now();
    if (!opts.json) process.stderr.write(`scoring ${examples.length} rows of ${what} with the base model, then with the adapter\n`);
    const rows = evaluateBeforeAfter(opened.engine, examples, window);
    const adapter = { folder: adapterFiles.dir };
    const seconds = (performance.now() - started) / 1000;
    // the run's own held-out rows: keep the table with the run, for its report and summary
    const runDir = opts.validationSplit && fs.existsSync(path.join(opts.adapter, METRICS_FILE)) ? opts.adapter : undefined;
    if (runDir !== undefined) {
      await writeBeforeAfter(runDir, rows);
      await writeReport(runDir);
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({
        model, adapter: adapter.folder, dataset: what, rows: examples.length, window, seconds, backend: opened.engine.description, categories: beforeAfterJson(rows),
      })}\n`);
      return;
    }
    process.stdout.write(`${formatBeforeAfter(rows)}\n`);
    process.stderr.write(`loss of the ${data.data.train_on === 'response' ? 'response ' : ''}tokens in the ${data.data.format} template; adapter ${adapter.folder}; ${seconds.toFixed(1)} s on ${opened.engine.description}\n`);
    if (runDir !== undefined) process.stderr.write(`wrote ${path.join(runDir, BEFORE_AFTER_FILE)} and updated ${path.join(runDir, REPORT_FILE)}\n`);
  } finally {
    opened.dispose();
  }
}

/** The options of --dataset as a data section, checked by the config schema and with its defaults for the rest. */
function datasetOption(dataset: string, opts: EvalOptions): EvalDataConfig['data'] {
  const parsed = DataSectionSchema.safeParse({ dataset, format: opts.format, max_rows: opts.maxRows });
  if (parsed.success) return parsed.data;
  const key = parsed.error.issues[0]!.path[0] ?? 'dataset';
  const option = ({ format: '--format', max_rows: '--max-rows' } as Readonly<Record<PropertyKey, string>>)[key] ?? '--dataset';
  throw new InputError(`${option}: expected ${expected(['data', String(key)])}`);
}
