import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineScorer, loadEvalExamples, lossByCategory, meanLoss } from '../../src/eval/category-loss.js';
import { DataSectionSchema } from '../../src/config/schema.js';
import { evaluateBeforeAfter } from '../../src/eval/held-out.js';
import { openEngine } from '../../src/runtime/open-engine.js';
import { latestCheckpoint } from '../../src/runtime/run-folder.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const fixture = sharedPath('fixtures', 'tiny-rwkv');
const dolly = sharedPath('data', 'dolly-sample.jsonl');
const TINY = path.join(REPO_ROOT, 'configs', 'tiny.yaml');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-eval-'));
const run = path.join(tmpRoot, 'run');
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

interface EvalJson {
  rows: number;
  categories: { category: string; examples: number; loss_tokens: number; base_loss: number; adapted_loss: number; perplexity_change: number }[];
}

describe.skipIf(!fixture.present || !dolly.present)('ditty eval MODEL --adapter RUN: base vs adapted, per category', () => {
  let trainLog = '';
  beforeAll(async () => {
    const r = await runCli(['train', TINY, '--set', `output.dir=${run}`, '--set', 'training.max_steps=3', '--set', 'training.learning_rate=1e-2']);
    expect(r.status, r.stderr).toBe(0);
    trainLog = r.stdout + r.stderr;
  });

  it('--validation-split scores the rows the run held out: the same loss tokens as training counted', async () => {
    const r = await runCli(['eval', fixture.path, '--adapter', run, '--validation-split', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as EvalJson;
    const all = out.categories.at(-1)!;
    expect(all.category).toBe('all');
    expect(all.examples).toBe(8);
    // the data statistics training printed: "loss tokens: 38,787 train, 659 validation"
    const counted = /loss tokens: [\d,]+ train, ([\d,]+) validation/.exec(trainLog);
    expect(counted, trainLog).not.toBeNull();
    expect(all.loss_tokens).toBe(Number(counted![1]!.replace(/,/g, '')));
    expect(out.categories.slice(0, -1).reduce((s, c) => s + c.examples, 0)).toBe(8);
    expect(all.adapted_loss).not.toBe(all.base_loss);
    expect(all.perplexity_change).toBeCloseTo(Math.expm1(all.adapted_loss - all.base_loss), 10);
    // kept with the run: the report shows the table
    const kept = JSON.parse(fs.readFileSync(path.join(run, 'before-after.json'), 'utf8')) as EvalJson['categories'];
    expect(kept).toEqual(out.categories);
    expect(fs.readFileSync(path.join(run, 'report.html'), 'utf8')).toMatch(/Held-out loss, base vs adapter<\/h2><table/);
  });

  it('--dataset prints the table, one row per category and "all"', async () => {
    const r = await runCli(['eval', fixture.path, '--adapter', run, '--dataset', dolly.path, '--max-rows', '6']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^category +examples +loss tokens +base loss +adapted loss +change +base ppl +adapted ppl +ppl change$/);
    expect(lines.at(-1)).toMatch(/^all +6 +[\d,]+ +\d+\.\d{4} +\d+\.\d{4} +[+-]\d+\.\d{4} /);
    expect(r.stderr).toMatch(/scoring 6 rows of .* with the base model, then with the adapter/);
  });

  it('on a training engine, zeroed adapters score as the base model and the trained weights come back', async () => {
    const opened = await openEngine(fixture.path, {
      backend: 'wasm', progress: false, log: () => undefined,
      lora: { seed: 1, config: { r: 4, alpha: 8, dropout: 0, targetModules: ['key', 'value'], useRslora: false, bias: 'none', fanInFanOut: false } },
    });
    try {
      const { engine } = opened;
      const examples = await loadEvalExamples({ data: DataSectionSchema.parse({ dataset: dolly.path, max_rows: 2 }) }, opened.tokenizer);
      const score = engineScorer(engine);
      // fresh LoRA has B = 0: the engine computes the base model
      const fresh = lossByCategory(score, examples, 64);
      const trained = new Map(engine.adapterTensors().map((w) => [w.name, w.values.map((_, i) => 0.05 * Math.sin(i + w.values.length))]));
      engine.loadAdapter(trained, 'test weights');
      const rows = evaluateBeforeAfter(engine, examples, 64);
      const all = rows.at(-1)!;
      expect(all.baseLoss).toBeCloseTo(meanLoss([...fresh.values()].reduce((a, b) => ({ examples: a.examples + b.examples, targets: a.targets + b.targets, nll: a.nll + b.nll }))), 5);
      expect(all.adaptedLoss).not.toBeCloseTo(all.baseLoss, 3);
      for (const w of engine.adapterTensors()) expect(w.values).toEqual(trained.get(w.name));
      // one wide window counts the same targets as windows of 64 that overlap by one: every target once
      const wide = lossByCategory(score, examples, 4096);
      expect([...wide.values()].map((p) => p.targets)).toEqual([...fresh.values()].map((p) => p.targets));
    } finally {
      opened.dispose();
    }
  });

  it('bad combinations are one line', async () => {
    expect((await runCli(['eval', fixture.path, '--dataset', dolly.path])).stderr)
      .toBe('ditty: error: --dataset and --validation-split compare the base model with an adapter: give --adapter RUN_OR_CHECKPOINT too\n');
    expect((await runCli(['eval', fixture.path, '--adapter', run, '--dataset', dolly.path, '--validation-split'])).stderr)
      .toBe('ditty: error: give either --dataset or --validation-split, not both\n');
    expect((await runCli(['eval', fixture.path, '--adapter', run, '--dataset', dolly.path, '--text', 'hi'])).stderr)
      .toBe('ditty: error: give either --dataset/--validation-split or --text/--file, not both\n');
    // --dataset is checked as the config's data.dataset is
    expect((await runCli(['eval', fixture.path, '--adapter', run, '--dataset', ''])).stderr)
      .toBe('ditty: error: --dataset: expected a hub dataset id, or a local .jsonl/.json/.parquet file or folder\n');
    // an adapter folder without the run's config.yaml: the split cannot be made
    const bare = path.join(tmpRoot, 'bare-adapter');
    fs.cpSync(latestCheckpoint(run)!, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'config.yaml'));
    expect((await runCli(['eval', fixture.path, '--adapter', bare, '--validation-split'])).stderr)
      .toBe(`ditty: error: ${bare}: no config.yaml, so the run's validation split is unknown; name the rows with --dataset\n`);
  });
});
