import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPresent, openInChromium } from '../../scripts/headless-chromium.js';
import { CHROMIUM } from '../../src/report/png.js';
import { writeReport } from '../../src/report/run-report.js';
import { runCli } from '../helpers/cli.js';
import { syntheticRun } from './synthetic-run.js';

if (!chromiumPresent) console.warn(`SKIPPED: report browser tests: no ${CHROMIUM} (Debian: apt-get install chromium)`);

describe.skipIf(!chromiumPresent)(`report.html in headless chromium (${CHROMIUM})`, () => {
  it('renders every chart with its points, with no console errors and no requests', async () => {
    const file = await writeReport(syntheticRun(40, 'browser'));
    const opened = await openInChromium(file);
    try {
      const charts = await opened.page.$$eval('svg.chart', (svgs) => svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return {
          id: svg.id, width: box.width, height: box.height,
          series: [...svg.querySelectorAll('g.series')].map((g) => {
            const p = g.querySelector('path');
            const b = p?.getBBox();
            return {
              name: g.getAttribute('data-name'),
              // drawn points: the path's commands (M then L per point)
              points: (p?.getAttribute('d')?.match(/[ML]/g) ?? []).length,
              drawnWidth: b?.width ?? 0,
              length: p?.getTotalLength() ?? 0,
            };
          }),
        };
      }));
      expect(charts.map((c) => c.id)).toEqual(['chart-loss', 'chart-lr', 'chart-grad-norm', 'chart-tokens-per-s']);
      for (const c of charts) {
        expect(c.width).toBeGreaterThan(300);
        expect(c.height).toBeGreaterThan(200);
        for (const s of c.series) {
          expect(s.points, `${c.id} ${s.name}`).toBeGreaterThan(1);
          expect(s.drawnWidth, `${c.id} ${s.name}`).toBeGreaterThan(100);
          expect(s.length, `${c.id} ${s.name}`).toBeGreaterThan(0);
        }
      }
      const loss = charts[0]!.series;
      expect(loss.map((s) => [s.name, s.points])).toEqual([['train (raw)', 40], ['train (EMA 0.75)', 40], ['validation', 4]]);
      expect(await opened.page.locator('#chart-loss circle').count()).toBe(4);
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([]);
    } finally {
      await opened.close();
    }
  });

  it('ditty report --png writes the loss chart as a PNG image', async () => {
    const dir = syntheticRun(12, 'png');
    const r = await runCli(['report', dir, '--png']);
    expect(r.status, r.stderr).toBe(0);
    const png = fs.readFileSync(path.join(dir, 'loss.png'));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR: width and height at the device scale factor 2
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([2592, 680]);
  });
});

describe('ditty report --png without chromium', () => {
  it('is one clear line', async () => {
    const { svgToPng } = await import('../../src/report/png.js');
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-png-')), 'loss.png');
    await expect(svgToPng('<svg xmlns="http://www.w3.org/2000/svg"/>', 10, 10, out, '/nonexistent/chromium'))
      .rejects.toThrow('--png needs a headless chromium at /nonexistent/chromium (Debian: apt-get install chromium)');
    expect(fs.existsSync(out)).toBe(false);
  });
});
