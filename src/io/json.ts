/** JSON input files, with the InputError every command reports for text that does not parse. */
import * as fs from 'node:fs';
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
