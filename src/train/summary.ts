import * as path from 'node:path';
import { formatBeforeAfter, type BeforeAfterRow } from '../eval/before-after.js';
import type { StepMetrics } from '../report/metrics.js';
import { formatDuration } from './progress.js';

/** The fields of TrainSummary the end-of-run summary reads. */
export interface RunOutcome {
  readonly steps: number;
  readonly startStep: number;
  readonly tokens: number;
  readonly seconds: number;
  readonly lastCheckpoint?: string;
  readonly interrupted?: NodeJS.Signals;
}

export interface RunSummaryInput {
  readonly outcome: RunOutcome;
  readonly runDir: string;
  /** metrics.jsonl of the whole run (all processes) */
  readonly entries: readonly StepMetrics[];
  /** the `ditty train` arguments that ran it: the config file and any `--set key=value` */
  readonly configFile: string;
  readonly overrides?: readonly string[];
  /** complete checkpoint folders, oldest first */
  readonly checkpoints: readonly string[];
  readonly reportFile?: string;
  /** the final adapter folder when the run wrote one; else the last checkpoint is the adapter */
  readonly adapterDir?: string;
  /** held-out loss per category, base vs adapter, when the run measured it */
  readonly beforeAfter?: readonly BeforeAfterRow[];
}

interface LossStats {
  first: [number, number];
  last: [number, number];
  best: [number, number];
}

function lossStats(points: readonly [number, number][]): LossStats | undefined {
  const finite = points.filter(([, y]) => Number.isFinite(y));
  if (finite.length === 0) return undefined;
  const best = finite.reduce((b, p) => (p[1] < b[1] ? p : b));
  return { first: finite[0]!, last: finite.at(-1)!, best };
}

function formatLoss(s: LossStats | undefined): string {
  if (!s) return 'none recorded';
  const one = ([step, v]: [number, number]): string => `${v.toFixed(4)} (step ${step})`;
  return `first ${one(s.first)}, last ${one(s.last)}, best ${one(s.best)}`;
}

/** `p` relative to the working folder when it is inside it, so that it can be pasted. */
export function displayPath(p: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, path.resolve(cwd, p));
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(cwd, p) : rel;
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

function trainCommand(configFile: string, overrides: readonly string[]): string {
  return ['ditty', 'train', configFile, ...overrides.flatMap((o) => ['--set', o])].map(shellWord).join(' ');
}

/** The end-of-run summary: what was trained, how the losses went, where the results are, what to run next. */
export function formatRunSummary(s: RunSummaryInput, cwd = process.cwd()): string {
  const o = s.outcome;
  const show = (p: string): string => displayPath(p, cwd);
  const overrides = s.overrides ?? [];
  const trained = o.steps - o.startStep;
  const rate = o.seconds > 0 ? o.tokens / o.seconds : NaN;
  const train = lossStats(s.entries.map((e) => [e.step, e.loss]));
  const val = lossStats(s.entries.flatMap((e): [number, number][] => (e.val_loss !== undefined ? [[e.step, e.val_loss]] : [])));
  const rows: [string, string][] = [
    ['steps', `${o.steps}${o.startStep > 0 ? ` (${trained} in this process, resumed at step ${o.startStep})` : ''}`
      + `${o.interrupted ? `; stopped early by ${o.interrupted}` : ''}`],
    ['tokens', `${o.tokens.toLocaleString('en-US')} in ${formatDuration(o.seconds)} (${Number.isFinite(rate) ? rate.toFixed(1) : '?'} tokens/s)`],
    ['train loss', formatLoss(train)],
    ['val loss', val ? formatLoss(val) : 'none (no validation split or no eval step)'],
  ];
  const adapter = s.adapterDir ?? o.lastCheckpoint;
  rows.push(['adapter', adapter !== undefined ? show(adapter) : 'none written']);
  if (s.reportFile !== undefined) rows.push(['report', show(s.reportFile)]);
  rows.push(['checkpoints', s.checkpoints.length === 0 ? 'none'
    : `${show(s.runDir)}/ (${s.checkpoints.map((c) => path.basename(c)).join(', ')})`]);
  if (o.interrupted || o.lastCheckpoint === undefined) {
    rows.push(['resume', trainCommand(s.configFile, overrides)]);
  } else {
    const longer = [...overrides.filter((x) => !x.startsWith('training.max_steps=')), `training.max_steps=${o.steps * 2}`];
    rows.push(['train longer', trainCommand(s.configFile, longer)]);
  }
  if (adapter !== undefined) {
    rows.push(['export', `ditty export ${shellWord(show(s.runDir))} --adapter OUT_DIR   (or --merged OUT_DIR for a full model)`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const table = s.beforeAfter && s.beforeAfter.length > 0
    ? ['held-out loss, base vs adapter (response tokens):', ...formatBeforeAfter(s.beforeAfter).split('\n').map((l) => `  ${l}`)] : [];
  return ['run summary', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`), ...table].join('\n');
}
