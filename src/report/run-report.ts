import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { writeBytesAtomic } from '../io/atomic.js';
import { beforeAfterCells, type BeforeAfterRow } from '../eval/before-after.js';
import { BEFORE_AFTER_FILE } from '../eval/held-out.js';
import { InputError } from '../io/errors.js';
import { readModelConfig } from '../models/config.js';
import { latestCheckpoint, TRAINER_STATE } from '../runtime/run-folder.js';
import { readTrainerState } from '../runtime/trainer-state.js';
import { reportHtml, type ReportInput, type Sample } from './html.js';
import { readMetrics } from './metrics.js';

export const REPORT_FILE = 'report.html';
export const METRICS_FILE = 'metrics.jsonl';
export const DATA_STATS_FILE = 'data-stats.json';
export const SAMPLES_FILE = 'samples.jsonl';
const CONFIG_FILE = 'config.yaml';

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The parsed JSON of `file`, or undefined when there is no such file. */
function readJson(file: string): unknown {
  const text = readText(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InputError(`${file}: not JSON`);
  }
}

function readJsonObject(file: string): Record<string, unknown> | undefined {
  const v = readJson(file);
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(`${file}: not a JSON object`);
  return v as Record<string, unknown>;
}

function readSamples(file: string): Sample[] | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  const lines = text.split('\n');
  return lines.flatMap((line, i): Sample[] => {
    if (!line.trim()) return [];
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      // the last line may be cut short by a crash; any other bad line is named
      if (i === lines.length - 1) return [];
      throw new InputError(`${file}:${i + 1}: not JSON`);
    }
    const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
    if (typeof o.step !== 'number' || typeof o.prompt !== 'string' || typeof o.output !== 'string') {
      throw new InputError(`${file}:${i + 1}: expected {"step": number, "prompt": string, "output": string}`);
    }
    const settings = typeof o.settings === 'object' && o.settings !== null && !Array.isArray(o.settings)
      ? { settings: o.settings as Record<string, unknown> } : {};
    return [{ step: o.step, prompt: o.prompt, output: o.output, ...settings }];
  });
}

/** The rows of a before-after.json, or undefined when the run has none. */
export function readBeforeAfter(file: string): BeforeAfterRow[] | undefined {
  const v = readJson(file);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new InputError(`${file}: expected a JSON array of rows`);
  const num = (x: unknown): number => (typeof x === 'number' ? x : NaN);
  return v.map((r: unknown, i): BeforeAfterRow => {
    const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
    if (typeof o.category !== 'string') throw new InputError(`${file}: row ${i + 1} has no "category"`);
    return {
      category: o.category, examples: num(o.examples), targets: num(o.loss_tokens), baseLoss: num(o.base_loss), adaptedLoss: num(o.adapted_loss),
      basePerplexity: num(o.base_perplexity), adaptedPerplexity: num(o.adapted_perplexity), perplexityChange: num(o.perplexity_change),
    };
  });
}

/** ln(vocab_size) of a local base model named in the run's config; undefined when it cannot be found. */
function uniformLoss(configYaml: string | undefined): number | undefined {
  if (configYaml === undefined) return undefined;
  try {
    const cfg = parseYaml(configYaml) as { model?: { name_or_path?: unknown } } | null;
    const model = cfg?.model?.name_or_path;
    if (typeof model !== 'string') return undefined;
    const { vocab_size: vocab } = readModelConfig(path.join(model, 'config.json'));
    return vocab > 1 ? Math.log(vocab) : undefined;
  } catch {
    return undefined;
  }
}

/** Everything report.html shows, read from a run folder: metrics.jsonl (required) and whatever else is there. */
export function loadReportInput(runDir: string, now = new Date()): ReportInput {
  if (!fs.statSync(runDir, { throwIfNoEntry: false })?.isDirectory()) throw new InputError(`${runDir}: no such run folder`);
  const entries = readMetrics(path.join(runDir, METRICS_FILE));
  const checkpoint = latestCheckpoint(runDir);
  const configYaml = readText(path.join(runDir, CONFIG_FILE)) ?? (checkpoint ? readText(path.join(checkpoint, CONFIG_FILE)) : undefined);
  const state = checkpoint ? readTrainerState(path.join(checkpoint, TRAINER_STATE)) : undefined;
  const dataStats = readJsonObject(path.join(runDir, DATA_STATS_FILE));
  const samples = readSamples(path.join(runDir, SAMPLES_FILE));
  const uniform = uniformLoss(configYaml);
  const beforeAfter = readBeforeAfter(path.join(runDir, BEFORE_AFTER_FILE));
  return {
    runName: path.basename(path.resolve(runDir)), entries, generatedAt: now,
    ...(state !== undefined ? { totalSteps: state.total_steps } : {}),
    ...(configYaml !== undefined ? { configYaml } : {}),
    ...(dataStats !== undefined ? { dataStats } : {}),
    ...(samples !== undefined ? { samples } : {}),
    ...(uniform !== undefined ? { uniformLoss: uniform } : {}),
    ...(beforeAfter !== undefined ? { beforeAfter: beforeAfterCells(beforeAfter) } : {}),
  };
}

/** (Re)writes `<runDir>/report.html` from the run folder (or from `input` already read from it), atomically; returns its path. */
export async function writeReport(runDir: string, input?: ReportInput): Promise<string> {
  const file = path.join(runDir, REPORT_FILE);
  await writeBytesAtomic(file, reportHtml(input ?? loadReportInput(runDir)));
  return file;
}

/** Records the data statistics in the run folder, for the report. */
export async function writeDataStats(runDir: string, stats: object): Promise<void> {
  await writeBytesAtomic(path.join(runDir, DATA_STATS_FILE), `${JSON.stringify(stats, null, 2)}\n`);
}
