import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizeExample } from '../../src/data/examples.js';
import { DATA_DEFAULTS, TRAINING_DEFAULTS, TrainConfigSchema, type TrainConfigInput } from '../../src/config/schema.js';
import { prepareDataset, type DataConfig } from '../../src/data/prepare.js';
import { loadRows } from '../../src/data/rows.js';
import { shuffled, splitValidation } from '../../src/data/shuffle.js';
import { resolveDatasetFile } from '../../src/data/source.js';
import { formatDataStats } from '../../src/data/stats.js';
import { dollyTemplate } from '../../src/data/templates.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { FakeHub } from '../hub/fake-hub.js';
import { sharedPath } from '../helpers/shared.js';

const sample = sharedPath('data', 'dolly-sample.jsonl');
const tokenizerFile = sharedPath('data', 'gpt-neox-20b-tokenizer.json');
const INTRO = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

describe.skipIf(!sample.present || !tokenizerFile.present)('Dolly sample through the data pipeline', () => {
  let tok: ReturnType<typeof loadTokenizer>;
  beforeAll(() => { tok = loadTokenizer(tokenizerFile.path); });
  const base = { dataset: sample.path, block_size: 256, validation_fraction: 0 };
  /** What a run hands prepareDataset: a parsed config with these keys, the rest the schema's defaults. */
  const configOf = (data: TrainConfigInput['data'], training: TrainConfigInput['training'] = { seed: 42 }): DataConfig =>
    TrainConfigSchema.parse({ model: { name_or_path: 'unused' }, data, training });
  const rowsOf = async () => (await loadRows(sample.path, { fields: dollyTemplate.fields })).rows;

  it('renders a row with context and one without exactly', async () => {
    const rows = await rowsOf();
    const withContext = dollyTemplate.render(rows[0]!);
    expect(withContext.prompt + withContext.completion).toBe(
      `${INTRO}\n\n### Instruction:\nWhen did Virgin Australia start operating?\n\nInput:\n${rows[0]!['context']}\n\n`
        + '### Response:\nVirgin Australia commenced services on 31 August 2000 as Virgin Blue, with two aircraft on a single route.\n\n### End',
    );
    expect(rows[0]!['context']).toMatch(/^Virgin Australia, the trading name .* Brisbane, Melbourne and Sydney\.\[4\]$/);
    const noContext = dollyTemplate.render(rows[1]!);
    expect(noContext.prompt + noContext.completion).toBe(
      `${INTRO}\n\n### Instruction:\nWhich is a species of fish? Tope or Rope\n\n### Response:\nTope\n\n### End`,
    );
  });

  it('masks in exactly the response, "\\n\\n### End" and EOS', async () => {
    for (const row of await rowsOf()) {
      const e = tokenizeExample(tok, dollyTemplate.render(row), 'response');
      const first = e.mask.indexOf(1);
      expect(e.mask.subarray(first).every((m) => m === 1)).toBe(true);
      expect(tok.decode(e.ids.slice(first))).toBe(`${row['response']}\n\n### End<|endoftext|>`);
      expect(tok.decode(e.ids.slice(0, first))).toBe(dollyTemplate.render(row).prompt);
      expect(e.ids.at(-1)).toBe(tok.eosId);
      const all = tokenizeExample(tok, dollyTemplate.render(row), 'all');
      expect(all.mask.every((m) => m === 1)).toBe(true);
    }
  });

  it('packs 406 rows into full blocks whose loss tokens are the responses', async () => {
    const { train, validation, stats } = await prepareDataset(configOf({ ...base, shuffle: false }), tok);
    expect(stats.rowsRead).toBe(406);
    expect(stats.examples).toBe(406);
    expect(validation).toEqual([]);
    expect(train.every((b) => b.input.length === 256 && b.target.length === 256 && b.weight.length === 256)).toBe(true);
    // in file order, the text of all blocks is the rows' texts joined by EOS
    const rows = await rowsOf();
    const exampleTokens = rows.map((r) => tokenizeExample(tok, dollyTemplate.render(r), 'response'));
    const responseTokens = exampleTokens.reduce((s, e) => s + e.mask.reduce((a, m) => a + m, 0), 0);
    expect(stats.trainTargets).toBe(responseTokens);
    expect(stats.totalTokens).toBe(exampleTokens.reduce((s, e) => s + e.ids.length, 0));
    const firstBlock = tok.decode([...train[0]!.input]);
    expect(firstBlock.startsWith(`${INTRO}\n\n### Instruction:\nWhen did Virgin Australia`)).toBe(true);
    const loss = train.flatMap((b) => [...b.target].filter((_, t) => b.weight[t] === 1));
    const expected = rows.map((r) => `${r['response']}\n\n### End<|endoftext|>`).join('');
    expect(tok.decode(loss)).toBe(expected);
    expect(stats.emptyBlocksDropped).toBeGreaterThanOrEqual(0);
    expect(stats.trainBlocks + stats.emptyBlocksDropped).toBe(Math.ceil((stats.totalTokens - 1) / 256));
  });

  it('one padded example per block: padding and prompts are out of the loss, long rows truncated', async () => {
    const { train, stats } = await prepareDataset(configOf({ ...base, packing: false, shuffle: false, block_size: 128 }), tok);
    expect(stats.longExamples).toBeGreaterThan(0);
    expect(train).toHaveLength(406 - stats.emptyBlocksDropped);
    for (const b of train) {
      const real = 128 - b.padding;
      expect(b.target.subarray(real).every((id) => id === tok.eosId)).toBe(true);
      expect(b.weight.subarray(real).every((w) => w === 0)).toBe(true);
    }
    expect(stats.emptyBlocksDropped).toBeGreaterThan(0); // the first row: its long context fills the block, its response is cut off
    expect(tok.decode([...train[0]!.input])).toContain('Which is a species of fish? Tope or Rope');
    const b = train[0]!;
    expect(tok.decode([...b.target].filter((_, t) => b.weight[t] === 1))).toBe('Tope\n\n### End<|endoftext|>');
    expect(stats.paddingFraction).toBeGreaterThan(0.1);
  });

  it('shuffles rows deterministically per seed, differently across seeds', async () => {
    const a = await prepareDataset(configOf(base, { seed: 1 }), tok);
    const b = await prepareDataset(configOf(base, { seed: 1 }), tok);
    const c = await prepareDataset(configOf(base, { seed: 2 }), tok);
    expect(b.train).toEqual(a.train);
    expect(c.train).not.toEqual(a.train);
    expect(c.stats.trainTargets).toBe(a.stats.trainTargets);
  });

  it('holds out validation rows disjoint from train, the same for the same seed', async () => {
    const rows = await rowsOf();
    const key = (r: Record<string, string>): string => JSON.stringify(r);
    const split = splitValidation(shuffled(rows, 3), 0.1);
    expect(split.validation).toHaveLength(41);
    const trainKeys = new Set(split.train.map(key));
    expect(split.validation.some((r) => trainKeys.has(key(r)))).toBe(false);
    expect(splitValidation(shuffled(rows, 3), 0.1)).toEqual(split);
    expect(splitValidation(rows.slice(0, 2), 0.01).validation).toHaveLength(1);
    expect(splitValidation(rows.slice(0, 1), 0.5).validation).toHaveLength(0);

    const opts = configOf({ ...base, validation_fraction: 0.1, packing: false, block_size: 2048 }, { seed: 3 });
    const prepared = await prepareDataset(opts, tok);
    expect(prepared.stats).toMatchObject({ trainRows: 365, validationRows: 41, longExamples: 0, emptyBlocksDropped: 0 });
    const texts = (blocks: typeof prepared.train): string[] => blocks.map((b) => tok.decode([...b.input]));
    const validationTexts = texts(prepared.validation);
    expect(validationTexts[0]).toContain(`### Instruction:\n${split.validation[0]!['instruction']}\n\n`);
    const trainTexts = new Set(texts(prepared.train));
    expect(validationTexts.some((t) => trainTexts.has(t))).toBe(false);
    expect((await prepareDataset(opts, tok)).validation).toEqual(prepared.validation);
  });

  it('runs a config that leaves keys to the schema\'s defaults', async () => {
    const prepared = await prepareDataset(configOf({ dataset: sample.path, block_size: 256 }, {}), tok);
    const rows = shuffled(await rowsOf(), TRAINING_DEFAULTS.seed);
    const split = splitValidation(rows, DATA_DEFAULTS.validation_fraction);
    expect(split.validation.length).toBeGreaterThan(0);
    expect(prepared.stats).toMatchObject({ trainRows: split.train.length, validationRows: split.validation.length, packing: DATA_DEFAULTS.packing, trainOn: 'response' });
    const text = await prepareDataset(configOf({ dataset: sample.path, block_size: 256, format: 'text', text_field: 'instruction' }, {}), tok);
    expect(text.stats.trainOn).toBe('all');
  });

  it('formats the statistics for printing', async () => {
    const { stats } = await prepareDataset(configOf({ ...base, validation_fraction: 0.05, max_rows: 100 }), tok);
    expect(stats).toMatchObject({ rowsRead: 100, trainRows: 95, validationRows: 5, rowsSkipped: 0 });
    const text = formatDataStats(stats);
    expect(text.split('\n')).toHaveLength(4);
    expect(text).toContain('rows: 100 read, 0 skipped, 95 train, 5 validation');
    expect(text).toMatch(/examples: 100, [\d,]+ tokens; length mean [\d.]+, median [\d.]+, max [\d,]+/);
  });

  describe('hub dataset ids', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-data-hub-'));
    const keys = ['HF_HOME', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN'] as const;
    const saved = keys.map((k) => process.env[k]);
    afterAll(() => {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('downloads the default file of databricks/databricks-dolly-15k into the HF cache', async () => {
      const commit = 'c'.repeat(40);
      const hub = new FakeHub([{
        type: 'dataset',
        name: 'databricks/databricks-dolly-15k',
        refs: { main: commit },
        commits: { [commit]: [{ path: 'databricks-dolly-15k.jsonl', content: fs.readFileSync(sample.path) }] },
      }]);
      for (const k of keys) delete process.env[k];
      process.env['HF_HOME'] = home;
      process.env['HF_ENDPOINT'] = await hub.start();
      try {
        const prepared = await prepareDataset(configOf({ ...base, dataset: 'databricks/databricks-dolly-15k' }), tok, false);
        expect(prepared.source).toBe('databricks/databricks-dolly-15k@cccccccccccc databricks-dolly-15k.jsonl');
        expect(prepared.stats.rowsRead).toBe(406);
      } finally {
        await hub.stop();
      }
      await expect(resolveDatasetFile({ dataset: 'someone/other-data' })).rejects.toThrow(/name the data file/);
      await expect(prepareDataset(configOf({ ...base, dataset: 'data/missing.jsonl' }), tok)).rejects.toThrow('data/missing.jsonl: no such dataset file');
      await expect(prepareDataset(configOf({ ...base, dataset: './missing' }), tok)).rejects.toThrow(/neither an existing file/);
    });
  });
});
