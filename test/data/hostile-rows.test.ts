import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadRows, MAX_ROW_CHARS, PARQUET_DEADLINE, skippedRowsWarning } from '../../src/data/rows.js';
import { dollyTemplate } from '../../src/data/templates.js';
import { InputError } from '../../src/io/errors.js';
import { loadTokenizer, MAX_RUN_CHARS } from '../../src/tokenizer/tokenizer.js';
import { sharedPath } from '../helpers/shared.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-data-hostile-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const fields = dollyTemplate.fields;

function write(name: string, content: string | Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

const row = (s: string) => Buffer.from(`${JSON.stringify({ instruction: s, response: 'R' })}\n`);
const latin1 = (s: string) => Buffer.from(s, 'latin1');

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).not.toContain('\n');
  return (err as Error).message;
}

describe('invalid UTF-8 is found, counted and named by line', () => {
  // Lines 2 and 4 hold Latin-1 bytes (\xe9) that are not UTF-8; line 3 holds a real U+FFFD.
  const bytes = Buffer.concat([row('ok 1'), latin1('{"instruction": "caf\xe9", "response": "R"}\n'), row('keeps \uFFFD'), latin1('{"instruction": "na\xefve", "response": "R"}\n'), row('ok 5')]);

  it('on_bad_row error: one line naming the file and the lines', async () => {
    const file = write('bad.jsonl', bytes);
    expect(await refusal(loadRows(file, { fields, onBadRow: 'error' }))).toBe(
      `${file}: invalid UTF-8 on lines 2, 4 (of 6); fix the file's encoding, or set data.on_bad_row: skip to leave those rows out`);
  });

  it('on_bad_row skip: those rows are left out and listed', async () => {
    const file = write('bad-skip.jsonl', bytes);
    const loaded = await loadRows(file, { fields, onBadRow: 'skip' });
    expect(loaded.rows.map((r) => r['instruction'])).toEqual(['ok 1', 'keeps \uFFFD', 'ok 5']);
    expect(loaded.skipped).toEqual([{ where: `${file}:2`, reason: 'invalid UTF-8' }, { where: `${file}:4`, reason: 'invalid UTF-8' }]);
    expect(skippedRowsWarning(loaded)).toBe(`skipped 2 of 5 rows of ${file}: ${file}:2: invalid UTF-8; ${file}:4: invalid UTF-8`);
  });

  it('a .json array: the rows holding invalid UTF-8 are bad rows', async () => {
    const json = Buffer.concat([latin1('[\n  {"instruction": "a", "response": "R"},\n  {"instruction": "caf\xe9", "response": "R"},\n'), Buffer.from('  {"instruction": "\uFFFD", "response": "R"}\n]\n')]);
    const file = write('bad.json', json);
    expect(await refusal(loadRows(file, { fields, onBadRow: 'error' }))).toMatch(/bad\.json: invalid UTF-8 on line 3 \(of 6\)/);
    const loaded = await loadRows(file, { fields, onBadRow: 'skip' });
    expect(loaded.rows.map((r) => r['instruction'])).toEqual(['a', '\uFFFD']);
    expect(loaded.skipped).toEqual([{ where: `${file}: row 2`, reason: 'has invalid UTF-8 (line 3 of the file)' }]);
  });

  it('lists the first five lines and counts the rest', async () => {
    const many = Buffer.concat(Array.from({ length: 12 }, () => latin1('{"instruction": "\xff", "response": "R"}\n')));
    const file = write('many.jsonl', many);
    expect(await refusal(loadRows(file, { fields, onBadRow: 'error' }))).toMatch(/invalid UTF-8 on lines 1, 2, 3, 4, 5 and 7 more \(of 13\)/);
  });
});

describe('row size is bounded', () => {
  it(`a row over ${MAX_ROW_CHARS} characters is a bad row`, async () => {
    const file = write('huge.jsonl', Buffer.concat([row('a'), row('x'.repeat(MAX_ROW_CHARS + 1)), row('b')]));
    expect(await refusal(loadRows(file, { fields, onBadRow: 'error' }))).toMatch(/huge\.jsonl:2: the row has 1000002 characters, more than the 1000000 ditty takes per row/);
    const loaded = await loadRows(file, { fields, onBadRow: 'skip' });
    expect(loaded.rows).toHaveLength(2);
  });
});

describe('parquet is read in a worker, under a deadline', () => {
  const saved = { ...PARQUET_DEADLINE };
  afterEach(() => { Object.assign(PARQUET_DEADLINE, saved); });
  const parquet = () => write('ok.parquet', new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: 'instruction', data: ['a', 'b'], type: 'STRING' },
      { name: 'response', data: ['A', 'B'], type: 'STRING' },
    ],
  })));

  it('reads a good file', async () => {
    expect((await loadRows(parquet(), { fields })).rows.map((r) => r['response'])).toEqual(['A', 'B']);
  });

  it('gives up on a reader that does not finish, with one line', async () => {
    Object.assign(PARQUET_DEADLINE, { baseMs: 1, perMiBMs: 0 });
    expect(await refusal(loadRows(parquet(), { fields }))).toMatch(/ok\.parquet: cannot read as parquet: no result after 0 s; the file is likely corrupt/);
  });

  it('gives up on a reader that runs out of its heap, with one line', async () => {
    Object.assign(PARQUET_DEADLINE, { heapMb: 1 });
    expect(await refusal(loadRows(parquet(), { fields }))).toMatch(/ok\.parquet: cannot read as parquet: reading it took more than 1 MB of memory; the file is likely corrupt/);
  });

  it('refuses garbage and a truncated file with one line', async () => {
    expect(await refusal(loadRows(write('junk.parquet', Buffer.from('PAR1 not really PAR1')), { fields }))).toMatch(/cannot read as parquet/);
    const good = fs.readFileSync(parquet());
    expect(await refusal(loadRows(write('cut.parquet', good.subarray(0, good.length - 9)), { fields }))).toMatch(/cannot read as parquet/);
  });
});

const tokenizerFile = sharedPath('data', 'gpt-neox-20b-tokenizer.json');
describe.skipIf(!tokenizerFile.present)('tokenizer: long runs without whitespace', () => {
  it('encodes 300k characters without a space in seconds, and decodes them back', () => {
    const tok = loadTokenizer(tokenizerFile.path);
    const t0 = Date.now();
    const ids = tok.encode(`start ${'abcdefghij'.repeat(30_000)} end`);
    expect(Date.now() - t0).toBeLessThan(60_000); // unbounded: minutes, and the heap for 10 MB
    expect(tok.decode(ids)).toBe(`start ${'abcdefghij'.repeat(30_000)} end`);
  });

  it('never cuts a surrogate pair', () => {
    const tok = loadTokenizer(tokenizerFile.path);
    const text = '😀'.repeat(MAX_RUN_CHARS * 2);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });
});
