import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_DEFAULTS } from '../../src/config/schema.js';
import { loadRows, skippedRowsWarning } from '../../src/data/rows.js';
import { dollyTemplate } from '../../src/data/templates.js';
import { InputError } from '../../src/io/errors.js';
import { sharedPath } from '../helpers/shared.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-data-rows-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fields = dollyTemplate.fields;

function write(name: string, content: string | ArrayBuffer): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, typeof content === 'string' ? content : Buffer.from(content));
  return p;
}

const ROWS = [
  { instruction: 'a', context: 'ctx', response: 'A', category: 'open_qa' },
  { instruction: 'b', context: '', response: 'B', category: 'closed_qa' },
  { instruction: 'c', response: 'C' },
];
const EXPECTED = [
  { instruction: 'a', context: 'ctx', response: 'A' },
  { instruction: 'b', context: '', response: 'B' },
  { instruction: 'c', context: '', response: 'C' },
];

describe('row loading', () => {
  it('.jsonl, .json (array and {data}) and .parquet give the same rows', async () => {
    const jsonl = write('rows.jsonl', ROWS.map((r) => JSON.stringify(r)).join('\r\n') + '\n\n');
    const json = write('rows.json', JSON.stringify(ROWS, null, 2));
    const wrapped = write('wrapped.json', JSON.stringify({ data: ROWS }));
    const column = (k: 'instruction' | 'context' | 'response'): (string | null)[] => ROWS.map((r) => (k in r ? r[k as keyof typeof r] : null) ?? null);
    const parquet = write('rows.parquet', parquetWriteBuffer({
      columnData: [
        { name: 'instruction', data: column('instruction'), type: 'STRING' },
        { name: 'context', data: column('context'), type: 'STRING' },
        { name: 'response', data: column('response'), type: 'STRING' },
      ],
    }));
    for (const file of [jsonl, json, wrapped, parquet]) {
      const loaded = await loadRows(file, { fields });
      expect(loaded.rows, file).toEqual(EXPECTED);
      expect(loaded.rowsRead).toBe(3);
      expect(loaded.skipped).toEqual([]);
    }
  });

  it('skip mode counts and lists bad rows with their line numbers', async () => {
    const lines = [
      JSON.stringify(ROWS[0]),
      '{"instruction": "broken", ',
      JSON.stringify({ instruction: 'no response', context: '' }),
      '',
      JSON.stringify({ instruction: 'x', response: 5 }),
      JSON.stringify(ROWS[1]),
    ];
    const file = write('bad.jsonl', lines.join('\n'));
    const loaded = await loadRows(file, { fields, onBadRow: 'skip' });
    expect(loaded.rows).toEqual(EXPECTED.slice(0, 2));
    // without onBadRow, the config schema's default (data.on_bad_row) applies
    expect(await loadRows(file, { fields })).toEqual(await loadRows(file, { fields, onBadRow: DATA_DEFAULTS.on_bad_row }));
    expect(loaded.rowsRead).toBe(5);
    expect(loaded.skipped.map((b) => b.where)).toEqual([`${file}:2`, `${file}:3`, `${file}:5`]);
    expect(loaded.skipped[0]!.reason).toMatch(/^not valid JSON/);
    expect(loaded.skipped[1]!.reason).toBe('"response" is missing');
    expect(loaded.skipped[2]!.reason).toBe('"response" is a number, expected a string');
    const warning = skippedRowsWarning(loaded, 2)!;
    expect(warning).toContain(`skipped 3 of 5 rows of ${file}: ${file}:2: not valid JSON`);
    expect(warning).toContain(`${file}:3: "response" is missing; and 1 more`);
  });

  it('error mode throws an InputError naming file:line', async () => {
    const file = write('bad2.jsonl', `${JSON.stringify(ROWS[0])}\n{oops\n`);
    await expect(loadRows(file, { fields, onBadRow: 'error' })).rejects.toThrow(InputError);
    await expect(loadRows(file, { fields, onBadRow: 'error' })).rejects.toThrow(new RegExp(`^${file}:2: not valid JSON`));
    const missing = write('bad3.jsonl', `${JSON.stringify(ROWS[0])}\n${JSON.stringify({ instruction: 'q' })}\n`);
    await expect(loadRows(missing, { fields, onBadRow: 'error' })).rejects.toThrow(`${missing}:2: "response" is missing`);
    const arr = write('bad.json', JSON.stringify([ROWS[0], { instruction: 'q', response: null }]));
    await expect(loadRows(arr, { fields, onBadRow: 'error' })).rejects.toThrow(`${arr}: row 2: "response" is missing`);
  });

  it('names the line of a malformed .json file and rejects other shapes and types', async () => {
    const file = write('broken.json', '[\n{"instruction": "a"},\n{oops}\n]');
    await expect(loadRows(file, { fields, onBadRow: 'error' })).rejects.toThrow(new RegExp(`^${file}:3: not valid JSON`));
    const obj = write('obj.json', '{"rows": []}');
    await expect(loadRows(obj, { fields, onBadRow: 'error' })).rejects.toThrow(/expected a JSON array of rows/);
    const csv = write('rows.csv', 'a,b\n');
    await expect(loadRows(csv, { fields, onBadRow: 'error' })).rejects.toThrow(/unsupported dataset file type ".csv"/);
    const notParquet = write('fake.parquet', 'not parquet at all');
    await expect(loadRows(notParquet, { fields, onBadRow: 'error' })).rejects.toThrow(/cannot read as parquet/);
    await expect(loadRows(path.join(tmp, 'nope.jsonl'), { fields, onBadRow: 'error' })).rejects.toThrow(/no such dataset file/);
  });

  it('maxRows keeps the first good rows', async () => {
    const file = write('max.jsonl', ROWS.map((r) => JSON.stringify(r)).join('\n'));
    const loaded = await loadRows(file, { fields, maxRows: 2 });
    expect(loaded.rows).toEqual(EXPECTED.slice(0, 2));
  });
});

const sample = sharedPath('data', 'dolly-sample.jsonl');

describe.skipIf(!sample.present)('real Dolly sample', () => {
  it('reads 406 rows', async () => {
    const loaded = await loadRows(sample.path, { fields });
    expect(loaded.rowsRead).toBe(406);
    expect(loaded.rows).toHaveLength(406);
    expect(loaded.rows[1]).toEqual({ instruction: 'Which is a species of fish? Tope or Rope', context: '', response: 'Tope' });
  });
});
