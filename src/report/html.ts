import type { StepMetrics } from './metrics.js';
import { escapeXml as esc, lineChart, type ChartSpec } from './svg-chart.js';

/** One line of samples.jsonl: a prompt and what the model generated for it at a step. */
export interface Sample {
  readonly step: number;
  readonly prompt: string;
  readonly output: string;
  /** the sampling settings it was generated with (samples.jsonl's "settings") */
  readonly settings?: Readonly<Record<string, unknown>>;
}

export interface ReportInput {
  readonly runName: string;
  readonly entries: readonly StepMetrics[];
  readonly totalSteps?: number;
  readonly configYaml?: string;
  /** data statistics as recorded (data-stats.json): shown as a key/value table */
  readonly dataStats?: Readonly<Record<string, unknown>>;
  readonly samples?: readonly Sample[];
  /** before-after.json: held-out loss per category, base vs adapter, as the cells `ditty eval` prints */
  readonly beforeAfter?: readonly (readonly string[])[];
  /** ln(vocabulary size): the loss of a uniform guess, drawn as a reference on the loss chart */
  readonly uniformLoss?: number;
  readonly generatedAt: Date;
}

/** TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0. */
export function ema(values: readonly number[], weight: number): number[] {
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return NaN;
    acc = acc * weight + (1 - weight) * v;
    n++;
    return acc / (1 - weight ** n);
  });
}

/** Heavier smoothing for longer runs: about the last 10% of the steps (at least 0.6, at most 0.99). */
export function smoothingWeight(points: number): number {
  return Math.min(0.99, Math.max(0.6, 1 - 10 / Math.max(1, points)));
}

const BLUE = '#1f77b4';
const RED = '#d62728';

/** The loss chart's size in report.html and in `ditty report --png`. */
export const LOSS_CHART = { width: 1296, height: 340 } as const;

export function lossChart(input: Pick<ReportInput, 'entries' | 'uniformLoss'>, width: number = LOSS_CHART.width, height: number = LOSS_CHART.height): string {
  const e = input.entries;
  const w = smoothingWeight(e.length);
  const smooth = ema(e.map((x) => x.loss), w);
  const val = e.flatMap((x): [number, number][] => (x.val_loss !== undefined ? [[x.step, x.val_loss]] : []));
  const spec: ChartSpec = {
    id: 'chart-loss', title: 'Loss', xLabel: 'optimizer step', width, height,
    series: [
      { name: 'train (raw)', points: e.map((x) => [x.step, x.loss]), color: BLUE, width: 1, opacity: 0.35 },
      { name: `train (EMA ${w.toFixed(2)})`, points: e.map((x, i) => [x.step, smooth[i]!]), color: BLUE, width: 2.2 },
      { name: 'validation', points: val, color: RED, width: 2, markers: true },
    ],
    ...(input.uniformLoss !== undefined ? { reference: { y: input.uniformLoss, label: `uniform guess ln(vocab) = ${input.uniformLoss.toFixed(2)}` } } : {}),
  };
  return lineChart(spec);
}

function smallChart(id: string, title: string, e: readonly StepMetrics[], pick: (x: StepMetrics) => number | undefined, color: string): string {
  const points = e.flatMap((x): [number, number][] => {
    const v = pick(x);
    return v !== undefined ? [[x.step, v]] : [];
  });
  return lineChart({ id, title, xLabel: 'optimizer step', width: 424, height: 240, series: [{ name: title, points, color, width: 1.8 }] });
}

function num(x: number | undefined, digits = 4): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function tiles(input: ReportInput): string {
  const e = input.entries;
  const last = e.at(-1);
  const tokens = e.reduce((s, x) => s + (x.tokens ?? 0), 0);
  const vals = e.filter((x) => x.val_loss !== undefined);
  const estimate = [...e].reverse().find((x) => x.estimated_total_s !== undefined);
  const bestVal = vals.reduce<StepMetrics | undefined>((b, x) => (b === undefined || x.val_loss! < b.val_loss! ? x : b), undefined);
  const items: [string, string][] = [
    ['steps', last ? `${last.step}${input.totalSteps !== undefined ? ` / ${input.totalSteps}` : ''}` : '0'],
    ['tokens', tokens.toLocaleString('en-US')],
    ['time', duration(last?.elapsed)],
    ['tokens/s', num(last?.tokens_per_s, 1)],
    ...(estimate !== undefined ? [[`estimated time (at step ${estimate.step})`, duration(estimate.estimated_total_s)] as [string, string]] : []),
    ['train loss (first → last)', `${num(e[0]?.loss)} → ${num(last?.loss)}`],
    ['validation loss (best)', bestVal ? `${num(bestVal.val_loss)} at step ${bestVal.step}` : '–'],
  ];
  return `<div class="tiles">${items.map(([k, v]) => `<div class="tile"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`).join('')}</div>`;
}

const STAT_LABELS: Readonly<Record<string, string>> = {
  rowsRead: 'rows read', rowsSkipped: 'rows skipped', trainRows: 'train rows', validationRows: 'validation rows',
  examples: 'examples', totalTokens: 'tokens (all examples)', meanLength: 'mean length', medianLength: 'median length',
  maxLength: 'max length', longExamples: 'examples longer than a block', trainBlocks: 'train blocks',
  validationBlocks: 'validation blocks', emptyBlocksDropped: 'blocks without targets dropped', trainTargets: 'train loss tokens',
  validationTargets: 'validation loss tokens', paddingFraction: 'padding fraction', blockSize: 'block size', packing: 'packing',
  trainOn: 'loss on',
};

function statValue(key: string, v: unknown): string {
  if (key === 'paddingFraction' && typeof v === 'number') return `${(100 * v).toFixed(2)}%`;
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(Number(v.toPrecision(4)));
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function dataStatsTable(stats: Readonly<Record<string, unknown>>): string {
  const rows = Object.entries(stats).map(([k, v]) => `<tr><th>${esc(STAT_LABELS[k] ?? k)}</th><td>${esc(statValue(k, v))}</td></tr>`);
  return `<table class="kv">${rows.join('')}</table>`;
}

function settingsText(settings: Readonly<Record<string, unknown>> | undefined): string {
  if (settings === undefined) return '';
  const words = Object.entries(settings).map(([k, v]) => `${k.replace(/_/g, ' ')} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `<p class="sub">generated with ${esc(words.join(', '))}</p>`;
}

function samplesSection(samples: readonly Sample[]): string {
  const byPrompt = new Map<string, Sample[]>();
  for (const s of samples) byPrompt.set(s.prompt, [...(byPrompt.get(s.prompt) ?? []), s]);
  return settingsText(samples.at(-1)?.settings) + [...byPrompt].map(([prompt, list]) => `<div class="sample"><div class="prompt">${esc(prompt)}</div><table class="gen">`
    + list.sort((a, b) => a.step - b.step).map((s) => `<tr><th>step ${s.step}</th><td>${esc(s.output)}</td></tr>`).join('')
    + '</table></div>').join('');
}

function cellsTable(cells: readonly (readonly string[])[]): string {
  const [head, ...rows] = cells;
  return `<table class="metrics"><tr>${(head ?? []).map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`
    + rows.map((r, i) => `<tr${i === rows.length - 1 ? ' class="total"' : ''}>${r.map((c, j) => (j === 0 ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`).join('')
    + '</table>';
}

function metricsTable(e: readonly StepMetrics[]): string {
  const head = ['step', 'loss', 'val_loss', 'lr', 'grad_norm', 'tokens', 'tokens/s', 'elapsed s'];
  const rows = e.map((x) => [String(x.step), num(x.loss), num(x.val_loss), x.lr !== undefined ? x.lr.toExponential(2) : '–',
    num(x.grad_norm, 3), x.tokens !== undefined ? String(x.tokens) : '–', num(x.tokens_per_s, 1), num(x.elapsed, 1)]);
  return `<table class="metrics"><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr>`
    + rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('') + '</table>';
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#f6f7f9;margin:0}
main{max-width:1320px;margin:0 auto;padding:16px 12px 40px}
h1{font-size:20px;margin:4px 0 2px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:#666;font-size:12px}
.tiles{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.tile{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:120px}
.tile .k{color:#666;font-size:11px}.tile .v{font-size:16px;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #ddd;border-radius:6px;max-width:100%;height:auto}
.cols{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.cols>div{flex:1 1 420px;min-width:0}
pre{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px;overflow:auto;font-size:12px;max-height:520px}
table{border-collapse:collapse;background:#fff;font-size:12px}
td,th{border:1px solid #e2e2e2;padding:3px 8px;text-align:left;vertical-align:top}
table.kv th{font-weight:500;color:#555}
table.metrics td{text-align:right;font-variant-numeric:tabular-nums}
tr.total td,tr.total th{border-top:2px solid #999;font-weight:700}
.sample{margin:0 0 14px}.prompt{font-weight:600;white-space:pre-wrap;margin-bottom:4px}
table.gen td{white-space:pre-wrap;font-family:ui-monospace,Menlo,monospace}table.gen th{white-space:nowrap}
.none{color:#888}
`;

/** report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched). */
export function reportHtml(input: ReportInput): string {
  const e = input.entries;
  const section = (title: string, body: string): string => `<section><h2>${esc(title)}</h2>${body}</section>`;
  const none = (what: string): string => `<p class="none">${esc(what)}</p>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(`ditty run ${input.runName}`)}</title><style>${CSS}</style></head>
<body><main>
<h1>ditty run: ${esc(input.runName)}</h1>
<div class="sub">generated ${esc(input.generatedAt.toISOString().replace('T', ' ').slice(0, 19))} UTC from metrics.jsonl; regenerate with <code>ditty report RUN</code></div>
${tiles(input)}
<div class="charts">
${lossChart(input)}
${smallChart('chart-lr', 'Learning rate', e, (x) => x.lr, '#2ca02c')}
${smallChart('chart-grad-norm', 'Gradient norm (before clipping)', e, (x) => x.grad_norm, '#9467bd')}
${smallChart('chart-tokens-per-s', 'Tokens/s', e, (x) => x.tokens_per_s, '#ff7f0e')}
</div>
${section('Held-out loss, base vs adapter', input.beforeAfter ? cellsTable(input.beforeAfter) : none('no before-after.json in this run (ditty eval MODEL --adapter RUN --validation-split makes the table)'))}
${section('Sample generations', input.samples && input.samples.length > 0 ? samplesSection(input.samples) : none('no samples.jsonl in this run'))}
<div class="cols">
<div>${section('Data', input.dataStats ? dataStatsTable(input.dataStats) : none('no data-stats.json in this run'))}</div>
<div>${section('Config', input.configYaml !== undefined ? `<pre>${esc(input.configYaml)}</pre>` : none('no config.yaml found in this run'))}</div>
</div>
${section('Metrics', e.length > 0 ? `<details><summary>${e.length} steps</summary>${metricsTable(e)}</details>` : none('no steps recorded yet'))}
</main></body></html>
`;
}
