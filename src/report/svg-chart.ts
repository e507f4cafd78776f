/**
 * Line charts as plain SVG strings: no library, nothing fetched when the page is viewed, and the
 * markup is simple enough to test (each series is one <path> with its point count in data-points).
 */

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly color: string;
  readonly width?: number;
  readonly opacity?: number;
  readonly dashed?: boolean;
  /** draw a dot at each point (for sparse series such as validation loss) */
  readonly markers?: boolean;
}

export interface ChartSpec {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly series: readonly Series[];
  readonly width?: number;
  readonly height?: number;
  /** a horizontal reference line, e.g. the loss of a uniform guess */
  readonly reference?: { readonly y: number; readonly label: string };
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const err = raw / mag;
  // d3's rule: the round step (1, 2 or 5 times a power of ten) nearest to the raw step
  const step = (err >= Math.sqrt(50) ? 10 : err >= Math.sqrt(10) ? 5 : err >= Math.sqrt(2) ? 2 : 1) * mag;
  // by index, not v += step: a range narrow next to its magnitude (a single tokens/s value padded by
  // a rounding error) has a step below the ulp of v, and adding it would never reach hi
  const first = Math.ceil(lo / step), last = Math.floor(hi / step + 1e-9);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last - first > 10 * count) return [lo, hi];
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks.length > 0 ? ticks : [lo, hi];
}

export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** At most `max` points, evenly spaced, always keeping the last: a 100k-step run stays a small page. */
export function thin<T>(points: readonly T[], max = 1500): readonly T[] {
  if (points.length <= max) return points;
  const every = Math.ceil(points.length / max);
  const kept = points.filter((_, i) => i % every === 0);
  if ((points.length - 1) % every !== 0) kept.push(points.at(-1)!);
  return kept;
}

function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** An SVG line chart; a chart with no finite points says so instead of drawing empty axes. */
export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 280;
  const m = { left: 64, right: 16, top: 34, bottom: 44 };
  const series = spec.series.map((s) => ({ ...s, points: thin(s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))) }));
  const all = series.flatMap((s) => s.points);
  const head = `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${escapeXml(spec.id)}" width="${W}" height="${H}" `
    + `viewBox="0 0 ${W} ${H}" font-family="system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif" role="img" aria-label="${escapeXml(spec.title)}">`
    + `<rect width="${W}" height="${H}" fill="#fff"/>`
    + `<text x="${m.left}" y="20" class="chart-title" font-size="14" font-weight="600" fill="#222">${escapeXml(spec.title)}</text>`;
  if (all.length === 0) {
    return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888" font-size="13">no data recorded</text></svg>`;
  }
  let [x0, x1] = extent(all.map((p) => p[0]));
  let [y0, y1] = extent([...all.map((p) => p[1]), ...(spec.reference ? [spec.reference.y] : [])]);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) {
    const pad = Math.abs(y0) * 0.1 || 1;
    y0 -= pad; y1 += pad;
  } else {
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
  }
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const r = (v: number): string => v.toFixed(1);
  const parts: string[] = [head];
  parts.push(`<g class="axes" font-size="11" fill="#555">`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${r(sy(t))}" y2="${r(sy(t))}" stroke="#e5e5e5"/>`
      + `<text x="${m.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${formatTick(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1).filter((t) => Number.isInteger(t) || x1 - x0 < 5)) {
    parts.push(`<line x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="#888"/>`
      + `<text x="${r(sx(t))}" y="${m.top + ph + 17}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#bbb"/>`
    + `<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(spec.xLabel)}</text></g>`);
  if (spec.reference) {
    const y = r(sy(spec.reference.y));
    parts.push(`<g class="reference"><line x1="${m.left}" x2="${W - m.right}" y1="${y}" y2="${y}" stroke="#999" stroke-dasharray="2 3"/>`
      + `<text x="${W - m.right - 4}" y="${Number(y) - 4}" text-anchor="end" font-size="10" fill="#777">${escapeXml(spec.reference.label)}</text></g>`);
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${r(sx(x))} ${r(sy(y))}`).join('');
    parts.push(`<g class="series" data-name="${escapeXml(s.name)}" data-points="${s.points.length}">`
      + `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" stroke-opacity="${s.opacity ?? 1}"`
      + `${s.dashed ? ' stroke-dasharray="5 3"' : ''} stroke-linejoin="round"/>`);
    if (s.markers || s.points.length === 1) {
      for (const [x, y] of s.points) {
        parts.push(`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="3" fill="${s.color}"><title>${escapeXml(s.name)} at ${x}: ${formatTick(y)}</title></circle>`);
      }
    }
    parts.push('</g>');
  }
  // legend, right-aligned in the title row
  let lx = W - m.right;
  const legend: string[] = [];
  for (const s of [...series].reverse()) {
    const w = 26 + s.name.length * 6.5;
    lx -= w;
    legend.push(`<line x1="${r(lx)}" x2="${r(lx + 18)}" y1="16" y2="16" stroke="${s.color}" stroke-width="${Math.max(2, s.width ?? 1.5)}" stroke-opacity="${Math.max(0.6, s.opacity ?? 1)}"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`
      + `<text x="${r(lx + 22)}" y="20" font-size="11" fill="#333">${escapeXml(s.name)}</text>`);
  }
  if (series.length > 1) parts.push(`<g class="legend">${legend.join('')}</g>`);
  parts.push('</svg>');
  return parts.join('');
}
