import * as fs from 'node:fs';
import * as path from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { InputError } from '../io/errors.js';

/** What to do with a row that cannot be used: leave it out (counted, listed) or stop with an error. */
export type OnBadRow = 'skip' | 'error';

/** A dataset row: the string fields a template needs (optional ones absent or null read as ""). */
export type Row = Readonly<Record<string, string>>;

export interface FieldSpec {
  /** must be present and a string */
  readonly required: readonly string[];
  /** may be missing or null (read as ""); otherwise must be a string */
  readonly optional: readonly string[];
}

/** A row that was left out: `where` is "file:line" (JSON Lines) or "file: row N" (JSON array, parquet). */
export interface BadRow {
  readonly where: string;
  readonly reason: string;
}

export interface LoadRowsOptions {
  fields: FieldSpec;
  /** default 'error' */
  onBadRow?: OnBadRow;
  /** stop after this many good rows (the first ones in file order) */
  maxRows?: number;
}

export interface LoadedRows {
  file: string;
  rows: Row[];
  /** records looked at, good and bad (blank lines of a .jsonl are not records) */
  rowsRead: number;
  skipped: BadRow[];
}

/** A record as read, before its fields are checked; `error` when it could not even be parsed. */
type RawRecord = { where: string; value: unknown; error?: undefined } | { where: string; error: string };

/** Read rows from a .jsonl, .json (array, or {"data": [...]}) or .parquet file and check their fields. */
export async function loadRows(file: string, options: LoadRowsOptions): Promise<LoadedRows> {
  const onBadRow = options.onBadRow ?? 'error';
  const maxRows = options.maxRows ?? Infinity;
  const rows: Row[] = [];
  const skipped: BadRow[] = [];
  let rowsRead = 0;
  for (const record of await readRecords(file)) {
    if (rows.length >= maxRows) break;
    rowsRead++;
    const checked = record.error === undefined ? checkFields(record.value, options.fields) : { problem: record.error };
    if ('row' in checked) {
      rows.push(checked.row);
    } else if (onBadRow === 'error') {
      throw new InputError(`${record.where}: ${checked.problem} (set data.on_bad_row: skip to leave such rows out)`);
    } else {
      skipped.push({ where: record.where, reason: checked.problem });
    }
  }
  return { file, rows, rowsRead, skipped };
}

/** A one-line warning listing the first few skipped rows, or undefined when none were skipped. */
export function skippedRowsWarning(loaded: LoadedRows, show = 3): string | undefined {
  const n = loaded.skipped.length;
  if (n === 0) return undefined;
  const listed = loaded.skipped.slice(0, show).map((b) => `${b.where}: ${b.reason}`).join('; ');
  const more = n > show ? `; and ${n - show} more` : '';
  return `skipped ${n} of ${loaded.rowsRead} rows of ${loaded.file}: ${listed}${more}`;
}

async function readRecords(file: string): Promise<Iterable<RawRecord>> {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such dataset file`);
  const ext = path.extname(file).toLowerCase();
  switch (ext) {
    case '.jsonl':
      return jsonLinesRecords(file, readText(file));
    case '.json':
      return jsonArrayRecords(file, readText(file));
    case '.parquet':
      return parquetRecords(file);
    default:
      throw new InputError(`${file}: unsupported dataset file type "${ext}" (expected .jsonl, .json or .parquet)`);
  }
}

function readText(file: string): string {
  return fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
}

function* jsonLinesRecords(file: string, text: string): Generator<RawRecord> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    try {
      yield { where, value: JSON.parse(line) as unknown };
    } catch (err) {
      yield { where, error: `not valid JSON: ${(err as Error).message}` };
    }
  }
}

function jsonArrayRecords(file: string, text: string): RawRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw new InputError(`${file}${line !== undefined ? `:${line}` : ''}: not valid JSON: ${message}`);
  }
  const items = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc['data']) ? (doc['data'] as unknown[]) : undefined;
  if (items === undefined) throw new InputError(`${file}: expected a JSON array of rows or an object {"data": [...]}`);
  return items.map((value, i) => ({ where: `${file}: row ${i + 1}`, value }));
}

async function parquetRecords(file: string): Promise<RawRecord[]> {
  let objects: Record<string, unknown>[];
  try {
    objects = await parquetReadObjects({ file: await asyncBufferFromFile(file) });
  } catch (err) {
    throw new InputError(`${file}: cannot read as parquet: ${(err as Error).message}`);
  }
  return objects.map((value, i) => ({ where: `${file}: row ${i + 1}`, value }));
}

function checkFields(value: unknown, fields: FieldSpec): { row: Row } | { problem: string } {
  if (!isObject(value)) return { problem: `expected a JSON object, got ${describe(value)}` };
  const row: Record<string, string> = {};
  for (const name of fields.required) {
    const v = value[name];
    if (v === undefined || v === null) return { problem: `"${name}" is missing` };
    if (typeof v !== 'string') return { problem: `"${name}" is ${describe(v)}, expected a string` };
    row[name] = v;
  }
  for (const name of fields.optional) {
    const v = value[name] ?? '';
    if (typeof v !== 'string') return { problem: `"${name}" is ${describe(v)}, expected a string` };
    row[name] = v;
  }
  return { row };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
