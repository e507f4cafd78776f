import * as fs from 'node:fs';
import { InputError } from '../io/errors.js';

/** One line of metrics.jsonl as the report reads it: step and loss always, the rest when recorded. */
export interface StepMetrics {
  readonly step: number;
  readonly loss: number;
  readonly lr?: number;
  readonly grad_norm?: number;
  readonly tokens?: number;
  readonly tokens_per_s?: number;
  readonly elapsed?: number;
  readonly epoch?: number;
  readonly val_loss?: number;
  readonly estimated_total_s?: number;
}

const OPTIONAL = ['lr', 'grad_norm', 'tokens', 'tokens_per_s', 'elapsed', 'epoch', 'val_loss', 'estimated_total_s'] as const;

function parseLine(line: string, where: string): StepMetrics {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new InputError(`${where}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(`${where}: not a JSON object`);
  const o = v as Record<string, unknown>;
  if (typeof o.step !== 'number' || typeof o.loss !== 'number') throw new InputError(`${where}: needs numeric "step" and "loss"`);
  const entry: { -readonly [K in keyof StepMetrics]: StepMetrics[K] } = { step: o.step, loss: o.loss };
  for (const k of OPTIONAL) {
    const x = o[k];
    if (typeof x === 'number') entry[k] = x;
    // JSON has no NaN/Infinity: a diverged value is written as null and simply left out
    else if (x !== undefined && x !== null) throw new InputError(`${where}: "${k}" is not a number`);
  }
  return entry;
}

/**
 * The entries of a metrics.jsonl, in file order. A last line without its newline is a write cut short
 * by a crash and is skipped; any other malformed line is an InputError naming file and line.
 */
export function parseMetrics(text: string, file: string): StepMetrics[] {
  const lines = text.split('\n');
  const entries: StepMetrics[] = [];
  lines.slice(0, -1).forEach((line, i) => {
    if (line.trim()) entries.push(parseLine(line, `${file}:${i + 1}`));
  });
  const tail = lines.at(-1) ?? '';
  if (tail.trim()) {
    try {
      entries.push(parseLine(tail, `${file}:${lines.length}`));
    } catch {
      // the line being written when the run stopped
    }
  }
  return entries;
}

/** Reads metrics.jsonl; a missing file is an InputError. */
export function readMetrics(file: string): StepMetrics[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new InputError(`${file}: cannot be read (no metrics.jsonl: is this a ditty run folder?)`);
  }
  return parseMetrics(text, file);
}
