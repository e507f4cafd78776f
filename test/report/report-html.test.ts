import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ema, reportHtml } from '../../src/report/html.js';
import { parseMetrics } from '../../src/report/metrics.js';
import { loadReportInput, writeReport } from '../../src/report/run-report.js';
import { niceTicks, thin } from '../../src/report/svg-chart.js';
import { syntheticRun } from './synthetic-run.js';

function seriesPoints(html: string): Record<string, number> {
  return Object.fromEntries([...html.matchAll(/<g class="series" data-name="([^"]+)" data-points="(\d+)">/g)].map((m) => [m[1]!, Number(m[2])]));
}

describe('report.html from a synthetic run', () => {
  const dir = syntheticRun(40);

  it('has the loss (raw, smoothed, validation), learning rate, gradient norm and tokens/s charts with all their points', () => {
    const html = reportHtml(loadReportInput(dir, new Date('2026-01-02T03:04:05Z')));
    const points = seriesPoints(html);
    expect(points['train (raw)']).toBe(40);
    expect(Object.entries(points).find(([k]) => k.startsWith('train (EMA'))?.[1]).toBe(40);
    expect(points.validation).toBe(4);
    expect(points['Learning rate']).toBe(40);
    expect(points['Gradient norm (before clipping)']).toBe(40);
    expect(points['Tokens/s']).toBe(40);
    for (const id of ['chart-loss', 'chart-lr', 'chart-grad-norm', 'chart-tokens-per-s']) expect(html).toContain(`id="${id}"`);
  });

  it('is self-contained and escapes what it shows: config, data statistics, samples', () => {
    const html = reportHtml(loadReportInput(dir));
    expect(html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/<script|<link|src=|url\(|https?:\/\//);
    expect(html).toContain('name_or_path: some/&lt;model&gt;');
    expect(html).toMatch(/<th>rows read<\/th><td>406<\/td>/);
    expect(html).toMatch(/<th>train blocks<\/th><td>919<\/td>/);
    expect(html).toContain('What is &lt;b&gt;NF4&lt;/b&gt;?');
    expect(html).toMatch(/<th>step 10<\/th><td>A four-bit &amp; normal float\.<\/td>.*<th>step 20<\/th>/s);
    expect(html).toMatch(/steps<\/div><div class="v">40<\/div>/);
  });

  it('a run with only metrics.jsonl says what is missing instead of failing', () => {
    const bare = syntheticRun(3, 'bare');
    for (const f of ['config.yaml', 'data-stats.json', 'samples.jsonl']) fs.rmSync(path.join(bare, f));
    const html = reportHtml(loadReportInput(bare));
    expect(html).toContain('no samples.jsonl in this run');
    expect(html).toContain('no data-stats.json in this run');
    expect(html).toContain('no config.yaml found in this run');
    // three steps without validation: the validation series is simply absent
    expect(seriesPoints(html).validation).toBeUndefined();
  });

  it('is written atomically: no temporary file is left and the file is replaced whole', async () => {
    const file = await writeReport(dir);
    expect(file).toBe(path.join(dir, 'report.html'));
    await writeReport(dir);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/<\/html>\n$/);
  });
});

describe('metrics.jsonl reading', () => {
  it('skips a last line cut short by a crash and names a bad line in the middle', () => {
    expect(parseMetrics('{"step":1,"loss":2}\n{"step":2,"lo', 'm.jsonl')).toEqual([{ step: 1, loss: 2 }]);
    expect(() => parseMetrics('{"step":1,"loss":2}\nnope\n{"step":3,"loss":1}\n', 'run/metrics.jsonl')).toThrow('run/metrics.jsonl:2: not JSON');
    expect(() => parseMetrics('{"step":1}\n', 'm.jsonl')).toThrow('m.jsonl:1: needs numeric "step" and "loss"');
    expect(parseMetrics('{"step":1,"loss":2,"grad_norm":null}\n', 'm')).toEqual([{ step: 1, loss: 2 }]);
  });
});

describe('chart helpers', () => {
  it('ema is debiased: a constant series stays constant from the first point', () => {
    expect(ema([5, 5, 5], 0.9).map((x) => Number(x.toFixed(9)))).toEqual([5, 5, 5]);
  });
  it('ticks are round numbers inside the range; long series are thinned keeping the last point', () => {
    expect(niceTicks(0.3, 2.9)).toEqual([0.5, 1, 1.5, 2, 2.5]);
    const t = thin(Array.from({ length: 10_001 }, (_, i) => i), 1000);
    expect(t.length).toBeLessThanOrEqual(1001);
    expect(t.at(-1)).toBe(10_000);
  });
  it('ticks of a range narrower than a rounding step of its values end (one tokens/s point of the native engine hung the report)', () => {
    const lo = 2802.990365892175;
    const ticks = niceTicks(lo, lo + 4.6e-13);
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks.length).toBeLessThanOrEqual(50);
    expect(niceTicks(1e6, 1e6 + 1e-9).length).toBeLessThanOrEqual(50);
  });
});
