/** JSON input files, with the InputError every command reports for text that does not parse. */
import * as fs from 'node:fs';
import * as z from 'zod';
import { InputError } from './errors.js';

/**
 * JSON.parse of `text` (or of what `text()` returns, so a failure to read is reported the same way);
 * a failure is an InputError "<where>: not valid JSON: ...".
 */
export function parseJson(text: string | (() => string), where: string): unknown {
  try {
    return JSON.parse(typeof text === 'string' ? text : text());
  } catch (err) {
    throw new InputError(`${where}: not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads and parses `file` (UTF-8); a failure to read or parse is an InputError naming it. */
export function readJsonFile(file: string): unknown {
  return parseJson(() => fs.readFileSync(file, 'utf8'), file);
}

/** `value` checked against `schema`; the first problem is one InputError line naming the file and the field. */
export function checkJson<T extends z.ZodType>(schema: T, value: unknown, file: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');
  throw new InputError(`${file}: ${field === '' ? 'the top level' : field}: ${issue.message}`);
}

/** Reads, parses and checks `file` against `schema`. */
export function readJsonFileAs<T extends z.ZodType>(schema: T, file: string): z.output<T> {
  return checkJson(schema, readJsonFile(file), file);
}

// ---------------------------------------------------------------------------------------------
// Schema helpers for the files ditty reads back (config.json, adapter_config.json, ...): one
// wording of a bad value, whichever check caught it.

/** A value as a message shows it: numbers as written (JSON would show Infinity as null), long values cut. */
export function shown(value: unknown): string {
  const s = typeof value === 'number' ? String(value) : JSON.stringify(value) ?? String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Absent or null: what a reader that follows Python takes as "not given". */
export const isAbsent = (value: unknown): boolean => value === undefined || value === null;

/**
 * A zod error option with one message for every way a key can fail, whichever check caught it:
 * "missing; expected <what>" or "must be <what>, found <value>".
 */
export function expecting(what: string): { error: (issue: { readonly input?: unknown }) => string } {
  return { error: (issue) => (isAbsent(issue.input) ? `missing; expected ${what}` : `must be ${what}, found ${shown(issue.input)}`) };
}

/** `schema`, or `fallback` when the key is absent or null (as Python readers of these files do). */
export function withDefault<S extends z.ZodType>(schema: S, fallback: z.output<S>) {
  return schema.nullish().transform((v): z.output<S> => v ?? fallback);
}

/** A boolean key. */
export const flag = () => z.boolean(expecting('true or false'));
