import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DATA_DEFAULTS, type DataSection } from '../config/schema.js';
import { InputError } from '../io/errors.js';

/**
 * Characters of one row (its template fields together) ditty takes: about 250k tokens, far more than
 * any training example; a longer row is a bad row (a whole book, a data dump), and tokenizing it
 * would take minutes.
 */
export const MAX_ROW_CHARS = 1_000_000;

/**
 * The parquet reader (hyparquet) runs in a worker with this deadline, plus this much per MiB of file,
 * and a heap limit: a corrupt file can make it loop or allocate without end.
 */
export const PARQUET_DEADLINE = { baseMs: 60_000, perMiBMs: 2_000, heapMb: 4096 };

/** What to do with a row that cannot be used: leave it out (counted, listed) or stop with an error. */
export type OnBadRow = DataSection['on_bad_row'];

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
  /** unset: the config's default (data.on_bad_row) */
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
  const onBadRow = options.onBadRow ?? DATA_DEFAULTS.on_bad_row;
  const maxRows = options.maxRows ?? Infinity;
  const rows: Row[] = [];
  const skipped: BadRow[] = [];
  let rowsRead = 0;
  for (const record of await readRecords(file, onBadRow)) {
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

async function readRecords(file: string, onBadRow: OnBadRow): Promise<Iterable<RawRecord>> {
  if (!fs.existsSync(file)) throw new InputError(`${file}: no such dataset file`);
  const ext = path.extname(file).toLowerCase();
  switch (ext) {
    case '.jsonl':
    case '.json': {
      const decoded = readText(file);
      if (decoded.badLines.length > 0 && onBadRow === 'error') {
        throw new InputError(`${file}: invalid UTF-8 on ${linesText(decoded.badLines)} (of ${decoded.text.split('\n').length}); fix the file's encoding, or set data.on_bad_row: skip to leave those rows out`);
      }
      return ext === '.jsonl' ? jsonLinesRecords(file, decoded) : jsonArrayRecords(file, decoded.text, decoded.badLines);
    }
    case '.parquet':
      return parquetRecords(file);
    default:
      throw new InputError(`${file}: unsupported dataset file type "${ext}" (expected .jsonl, .json or .parquet)`);
  }
}

/**
 * Stands in for each invalid UTF-8 sequence, so that the rows holding one can be found after parsing
 * (a noncharacter: valid text has no business containing it; a file that does is refused as binary).
 */
const BAD_UTF8 = '\uFFFF';

interface DecodedText {
  text: string;
  /** 1-based numbers of the lines holding invalid UTF-8 */
  badLines: number[];
}

/** The file as text; invalid UTF-8 becomes BAD_UTF8 and is listed by line, instead of a silent U+FFFD. */
function readText(file: string): DecodedText {
  const bytes = fs.readFileSync(file);
  if (isUtf8(bytes)) return { text: bytes.toString('utf8').replace(/^\uFEFF/, ''), badLines: [] };
  const badLines: number[] = [];
  const parts: string[] = [];
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const lax = new TextDecoder('utf-8', { ignoreBOM: true });
  let line = 1;
  for (let start = 0; start <= bytes.length;) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const chunk = bytes.subarray(start, end);
    if (isUtf8(chunk)) {
      parts.push(strict.decode(chunk));
    } else {
      badLines.push(line);
      // U+FFFD that was in the file stays; only what the decoder replaced becomes the marker.
      parts.push(decodeMarkingInvalid(chunk, lax));
    }
    start = end + 1;
    line++;
  }
  const text = parts.join('\n').replace(/^\uFEFF/, '');
  return { text, badLines };
}

/** Decodes `chunk`, with each invalid sequence replaced by BAD_UTF8. */
function decodeMarkingInvalid(chunk: Uint8Array, lax: { decode(b: Uint8Array): string }): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < chunk.length;) {
    const n = utf8SequenceLength(chunk, i);
    if (n > 0) { i += n; continue; }
    out += lax.decode(chunk.subarray(from, i)) + BAD_UTF8;
    i++;
    from = i;
  }
  return out + lax.decode(chunk.subarray(from));
}

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there does not start one. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function containsMarker(v: unknown): boolean {
  if (typeof v === 'string') return v.includes(BAD_UTF8);
  if (Array.isArray(v)) return v.some(containsMarker);
  if (isObject(v)) return Object.entries(v).some(([k, x]) => k.includes(BAD_UTF8) || containsMarker(x));
  return false;
}

function linesText(lines: readonly number[], show = 5): string {
  const listed = lines.slice(0, show).join(', ');
  return `${lines.length === 1 ? 'line' : 'lines'} ${listed}${lines.length > show ? ` and ${lines.length - show} more` : ''}`;
}

function* jsonLinesRecords(file: string, { text, badLines }: DecodedText): Generator<RawRecord> {
  const bad = new Set(badLines);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    if (bad.has(i + 1)) {
      yield { where, error: 'invalid UTF-8' };
      continue;
    }
    try {
      yield { where, value: JSON.parse(line) as unknown };
    } catch (err) {
      yield { where, error: `not valid JSON: ${(err as Error).message}` };
    }
  }
}

function jsonArrayRecords(file: string, text: string, badLines: readonly number[]): RawRecord[] {
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
  return items.map((value, i) => {
    const where = `${file}: row ${i + 1}`;
    return badLines.length > 0 && containsMarker(value) ? { where, error: `has invalid UTF-8 (${linesText(badLines)} of the file)` } : { where, value };
  });
}

async function parquetRecords(file: string): Promise<RawRecord[]> {
  const objects = await readParquetInWorker(file);
  return objects.map((value, i) => ({ where: `${file}: row ${i + 1}`, value }));
}

/** What the parquet worker runs (an eval'd CommonJS script: it works the same from src/ under vitest and from dist/). */
const PARQUET_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.hyparquet).then(async ({ asyncBufferFromFile, parquetReadObjects }) => {
  const rows = await parquetReadObjects({ file: await asyncBufferFromFile(workerData.file) });
  parentPort.postMessage({ rows });
}).catch((err) => parentPort.postMessage({ error: String(err && err.message || err) }));
`;

/** Reads all rows of a parquet file with hyparquet in a worker thread, under a deadline and a heap limit. */
async function readParquetInWorker(file: string): Promise<Record<string, unknown>[]> {
  const size = fs.statSync(file).size;
  const deadlineMs = PARQUET_DEADLINE.baseMs + Math.ceil(size / 2 ** 20) * PARQUET_DEADLINE.perMiBMs;
  const worker = new Worker(PARQUET_WORKER, {
    eval: true,
    workerData: { file, hyparquet: pathToFileURL(createRequire(import.meta.url).resolve('hyparquet')).href },
    resourceLimits: { maxOldGenerationSizeMb: PARQUET_DEADLINE.heapMb },
    stdout: true,
    stderr: true,
  });
  try {
    return await new Promise<Record<string, unknown>[]>((resolve, reject) => {
      const fail = (why: string) => reject(new InputError(`${file}: cannot read as parquet: ${why}`));
      const timer = setTimeout(() => fail(`no result after ${Math.round(deadlineMs / 1000)} s; the file is likely corrupt`), deadlineMs);
      worker.once('message', (m: { rows?: Record<string, unknown>[]; error?: string }) => {
        clearTimeout(timer);
        if (m.rows !== undefined) resolve(m.rows);
        else fail(m.error ?? 'unknown error');
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        fail(err.message.includes('heap') || (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `reading it took more than ${PARQUET_DEADLINE.heapMb} MB of memory; the file is likely corrupt`
          : err.message);
      });
      worker.once('exit', (code) => { clearTimeout(timer); fail(`the reader stopped (exit ${code})`); });
    });
  } finally {
    await worker.terminate();
  }
}

function checkFields(value: unknown, fields: FieldSpec): { row: Row } | { problem: string } {
  if (!isObject(value)) return { problem: `expected a JSON object, got ${describe(value)}` };
  const row: Record<string, string> = {};
  let chars = 0;
  for (const name of [...fields.required, ...fields.optional]) {
    const v = value[name];
    if (typeof v === 'string') chars += v.length;
  }
  if (chars > MAX_ROW_CHARS) {
    return { problem: `the row has ${chars} characters, more than the ${MAX_ROW_CHARS} ditty takes per row (split such documents into several rows)` };
  }
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
