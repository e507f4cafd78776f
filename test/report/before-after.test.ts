import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { beforeAfterJson, beforeAfterRows, formatBeforeAfter } from '../../src/eval/before-after.js';
import { loadEvalExamples, lossByCategory, meanLoss, type PooledLoss } from '../../src/eval/category-loss.js';
import { validationSplitOf, writeBeforeAfter } from '../../src/eval/held-out.js';
import { loadTrainConfig } from '../../src/config/index.js';
import { DataSectionSchema } from '../../src/config/schema.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { reportHtml } from '../../src/report/html.js';
import { loadReportInput, readBeforeAfter } from '../../src/report/run-report.js';
import { formatRunSummary } from '../../src/train/summary.js';
import { syntheticRun } from './synthetic-run.js';

const base = new Map<string, PooledLoss>([
  ['classification', { examples: 2, targets: 100, nll: 300 }],
  ['open_qa', { examples: 3, targets: 300, nll: 600 }],
]);
const adapted = new Map<string, PooledLoss>([
  ['classification', { examples: 2, targets: 100, nll: 250 }],
  ['open_qa', { examples: 3, targets: 300, nll: 630 }],
]);

describe('before/after table', () => {
  const rows = beforeAfterRows(base, adapted);

  it('one row per category and one for all, pooled per loss token', () => {
    expect(rows.map((r) => r.category)).toEqual(['classification', 'open_qa', 'all']);
    expect(rows[0]).toMatchObject({ examples: 2, targets: 100, baseLoss: 3, adaptedLoss: 2.5 });
    expect(rows[0]!.perplexityChange).toBeCloseTo(Math.exp(-0.5) - 1, 12);
    expect(rows[1]!.perplexityChange).toBeCloseTo(Math.exp(0.1) - 1, 12);
    // all: 900 / 400 before, 880 / 400 after
    expect(rows[2]).toMatchObject({ examples: 5, targets: 400, baseLoss: 2.25, adaptedLoss: 2.2 });
    expect(meanLoss({ examples: 1, targets: 0, nll: 0 })).toBeNaN();
  });

  it('prints an aligned table with signed changes', () => {
    expect(formatBeforeAfter(rows)).toBe([
      'category        examples  loss tokens  base loss  adapted loss   change  base ppl  adapted ppl  ppl change',
      'classification         2          100     3.0000        2.5000  -0.5000     20.09        12.18      -39.3%',
      'open_qa                3          300     2.0000        2.1000  +0.1000      7.39         8.17      +10.5%',
      'all                    5          400     2.2500        2.2000  -0.0500      9.49         9.03       -4.9%',
    ].join('\n'));
  });

  it('round-trips through before-after.json and shows in the report and the summary', async () => {
    const dir = syntheticRun(3, 'ba');
    await writeBeforeAfter(dir, rows);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'before-after.json'), 'utf8')) as ReturnType<typeof beforeAfterJson>;
    expect(json[2]).toMatchObject({ category: 'all', examples: 5, loss_tokens: 400, base_loss: 2.25, adapted_loss: 2.2 });
    const back = readBeforeAfter(path.join(dir, 'before-after.json'))!;
    expect(formatBeforeAfter(back)).toBe(formatBeforeAfter(rows));
    const html = reportHtml(loadReportInput(dir));
    expect(html).toMatch(/Held-out loss, base vs adapter<\/h2><table class="metrics"><tr><th>category<\/th>/);
    expect(html).toMatch(/<th>open_qa<\/th><td>3<\/td><td>300<\/td><td>2\.0000<\/td><td>2\.1000<\/td><td>\+0\.1000<\/td>/);
    const summary = formatRunSummary({
      runDir: dir, entries: [{ step: 1, loss: 2 }], configFile: 'c.yaml', checkpoints: [], beforeAfter: back,
      outcome: { steps: 1, startStep: 0, tokens: 1, seconds: 1 },
    });
    expect(summary).toMatch(/held-out loss, base vs adapter \(response tokens\):\n {2}category +examples/);
    expect(summary).toMatch(/\n {2}all +5 +400 +2\.2500 +2\.2000 +-0\.0500/);
  });

  it('a broken before-after.json is one line naming the file', () => {
    const dir = syntheticRun(2, 'ba-bad');
    fs.writeFileSync(path.join(dir, 'before-after.json'), '{"category": 1}');
    expect(() => loadReportInput(dir)).toThrow(`${path.join(dir, 'before-after.json')}: expected a JSON array of rows`);
    fs.writeFileSync(path.join(dir, 'before-after.json'), '[{"category": "a"');
    expect(() => loadReportInput(dir)).toThrow(`${path.join(dir, 'before-after.json')}: not JSON`);
    fs.writeFileSync(path.join(dir, 'before-after.json'), '[{"examples": 1}]');
    expect(() => loadReportInput(dir)).toThrow(`${path.join(dir, 'before-after.json')}: row 1 has no "category"`);
    fs.rmSync(path.join(dir, 'before-after.json'));
    fs.writeFileSync(path.join(dir, 'data-stats.json'), '[]');
    expect(() => loadReportInput(dir)).toThrow(`${path.join(dir, 'data-stats.json')}: not a JSON object`);
  });

  it('--dataset options parsed alone get the data defaults: the Dolly template scoring its response, or the "text" field', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-heldout-'));
    try {
      const file = path.join(dir, 'rows.jsonl');
      const rows = [{ instruction: 'Q', response: 'ab', text: 'xyz', category: 'open_qa' }, { instruction: 'R', response: 'cd', text: 'w' }];
      fs.writeFileSync(file, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
      const encoder = { eosId: 0, encode: (t: string) => [...t].map((c) => c.charCodeAt(0)) };
      const dolly = await loadEvalExamples({ data: DataSectionSchema.parse({ dataset: file, max_rows: 1 }) }, encoder);
      expect(dolly.map((e) => e.category)).toEqual(['open_qa']);
      // the response, "\n\n### End" and EOS count; the prompt does not
      expect(dolly[0]!.mask.reduce((s, m) => s + m, 0)).toBe('ab\n\n### End'.length + 1);
      expect(dolly[0]!.mask[0]).toBe(0);
      const text = await loadEvalExamples({ data: DataSectionSchema.parse({ dataset: file, format: 'text' }) }, encoder);
      expect(text.map((e) => [e.category, e.ids])).toEqual([['open_qa', [120, 121, 122, 0]], ['(none)', [119, 0]]]);
      expect(text.every((e) => e.mask.every((m) => m === 1))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('held-out scoring refuses what it cannot score in one line', async () => {
    const config = loadTrainConfig(path.join(REPO_ROOT, 'configs', 'tiny.yaml'), ['data.validation_fraction=0', 'training.eval_every=null']);
    expect(() => validationSplitOf(config)).toThrow('data.validation_fraction is 0: the run held out no rows to evaluate');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-heldout-'));
    try {
      const file = path.join(dir, 'one.jsonl');
      fs.writeFileSync(file, `${JSON.stringify({ instruction: 'Name a color.', context: '', response: 'Blue.', category: 'open_qa' })}\n`);
      const encoder = { eosId: 0, encode: (t: string) => [...t].map((c) => c.charCodeAt(0) % 50) };
      // one row leaves nothing for a validation split
      const data = DataSectionSchema.parse({ dataset: file, validation_fraction: 0.5 });
      await expect(loadEvalExamples({ data, validationSplit: { seed: 1 } }, encoder))
        .rejects.toThrow(`${file}: no validation rows to evaluate`);
      const examples = await loadEvalExamples({ data }, encoder);
      expect(examples.map((e) => e.category)).toEqual(['open_qa']);
      expect(() => lossByCategory(() => 0, examples, 1)).toThrow('the scoring window must be at least 2 tokens, got 1');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
