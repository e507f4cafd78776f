import { meanLoss, type PooledLoss } from './category-loss.js';

export interface BeforeAfterRow {
  /** a category, or "all" for the whole set */
  readonly category: string;
  readonly examples: number;
  readonly targets: number;
  readonly baseLoss: number;
  readonly adaptedLoss: number;
  readonly basePerplexity: number;
  readonly adaptedPerplexity: number;
  /** (adapted / base perplexity - 1): negative when the adapter helps */
  readonly perplexityChange: number;
}

export const ALL = 'all';

function row(category: string, base: PooledLoss, adapted: PooledLoss): BeforeAfterRow {
  const baseLoss = meanLoss(base);
  const adaptedLoss = meanLoss(adapted);
  // expm1 of the loss difference keeps the digits a ratio of two large perplexities would lose
  return {
    category, examples: base.examples, targets: base.targets, baseLoss, adaptedLoss,
    basePerplexity: Math.exp(baseLoss), adaptedPerplexity: Math.exp(adaptedLoss), perplexityChange: Math.expm1(adaptedLoss - baseLoss),
  };
}

function total(groups: Iterable<PooledLoss>): PooledLoss {
  let examples = 0;
  let targets = 0;
  let nll = 0;
  for (const g of groups) {
    examples += g.examples;
    targets += g.targets;
    nll += g.nll;
  }
  return { examples, targets, nll };
}

/** One row per category (both maps come from the same examples) and a last row for the whole set. */
export function beforeAfterRows(base: ReadonlyMap<string, PooledLoss>, adapted: ReadonlyMap<string, PooledLoss>): BeforeAfterRow[] {
  const rows = [...base].map(([category, b]) => {
    const a = adapted.get(category);
    if (!a) throw new Error(`category ${category} was scored for the base model only`);
    return row(category, b, a);
  });
  return [...rows, row(ALL, total(base.values()), total(adapted.values()))];
}

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function perplexity(x: number): string {
  if (!Number.isFinite(x)) return '–';
  return x >= 1e4 ? x.toExponential(2).replace('e+', 'e') : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2);
}

function percent(x: number): string {
  return Number.isFinite(x) ? `${x > 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : '–';
}

export const BEFORE_AFTER_HEADER = ['category', 'examples', 'loss tokens', 'base loss', 'adapted loss', 'change', 'base ppl', 'adapted ppl', 'ppl change'] as const;

/** The table's cells as text, header first. */
export function beforeAfterCells(rows: readonly BeforeAfterRow[]): string[][] {
  return [[...BEFORE_AFTER_HEADER], ...rows.map((r) => [
    r.category, String(r.examples), r.targets.toLocaleString('en-US'), fixed(r.baseLoss, 4), fixed(r.adaptedLoss, 4),
    Number.isFinite(r.adaptedLoss - r.baseLoss) ? `${r.adaptedLoss - r.baseLoss > 0 ? '+' : ''}${(r.adaptedLoss - r.baseLoss).toFixed(4)}` : '–',
    perplexity(r.basePerplexity), perplexity(r.adaptedPerplexity), percent(r.perplexityChange),
  ])];
}

/** A plain-text table: category left-aligned, numbers right-aligned. */
export function formatBeforeAfter(rows: readonly BeforeAfterRow[]): string {
  const cells = beforeAfterCells(rows);
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => r[c]!.length)));
  return cells.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ').trimEnd()).join('\n');
}

/** The JSON form (`ditty eval --json`, before-after.json in a run folder). */
export function beforeAfterJson(rows: readonly BeforeAfterRow[]): { category: string; examples: number; loss_tokens: number; base_loss: number | null;
  adapted_loss: number | null; base_perplexity: number | null; adapted_perplexity: number | null; perplexity_change: number | null }[] {
  const n = (x: number): number | null => (Number.isFinite(x) ? x : null);
  return rows.map((r) => ({
    category: r.category, examples: r.examples, loss_tokens: r.targets, base_loss: n(r.baseLoss), adapted_loss: n(r.adaptedLoss),
    base_perplexity: n(r.basePerplexity), adapted_perplexity: n(r.adaptedPerplexity), perplexity_change: n(r.perplexityChange),
  }));
}
