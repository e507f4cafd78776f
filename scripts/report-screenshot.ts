/**
 * Screenshot of a run's report.html as headless chromium draws it (docs/report-tiny.png):
 *   node dist/scripts/report-screenshot.js RUN_DIR OUT.png [HEIGHT | WIDTHxHEIGHT] [FROM_SELECTOR]
 * Rewrites the report first; fails when the page logs a console error. With FROM_SELECTOR the shot
 * starts at that element (e.g. "h2:has-text('Held-out')") instead of the top of the page.
 */
import * as fs from 'node:fs';
import { writeReport } from '../src/report/run-report.js';
import { openInChromium } from './headless-chromium.js';

const [runDir, out, size, from] = process.argv.slice(2);
if (runDir === undefined || out === undefined) {
  process.stderr.write('usage: node dist/scripts/report-screenshot.js RUN_DIR OUT.png [HEIGHT]\n');
  process.exit(2);
}
const file = await writeReport(runDir);
const opened = await openInChromium(file, { width: 1344, height: 1000 });
try {
  if (opened.errors.length > 0) throw new Error(`console errors: ${opened.errors.join('; ')}`);
  const [w, h] = (size ?? '1000').includes('x') ? (size ?? '').split('x').map(Number) as [number, number] : [1344, Number(size)];
  const top = from === undefined ? 0 : Math.max(0, ((await opened.page.locator(from).first().boundingBox())?.y ?? 0) - 8);
  fs.writeFileSync(out, await opened.page.screenshot({ type: 'png', fullPage: true, clip: { x: 0, y: top, width: w, height: h } }));
  process.stdout.write(`${out}\n`);
} finally {
  await opened.close();
}
