/**
 * Screenshot of a run's report.html as headless chromium draws it (docs/report-tiny.png):
 *   node dist/scripts/report-screenshot.js RUN_DIR OUT.png [HEIGHT]
 * Rewrites the report first; fails when the page logs a console error.
 */
import * as fs from 'node:fs';
import { writeReport } from '../src/report/run-report.js';
import { openInChromium } from './headless-chromium.js';

const [runDir, out, height] = process.argv.slice(2);
if (runDir === undefined || out === undefined) {
  process.stderr.write('usage: node dist/scripts/report-screenshot.js RUN_DIR OUT.png [HEIGHT]\n');
  process.exit(2);
}
const file = await writeReport(runDir);
const opened = await openInChromium(file, { width: 1344, height: Number(height ?? 1000) });
try {
  if (opened.errors.length > 0) throw new Error(`console errors: ${opened.errors.join('; ')}`);
  fs.writeFileSync(out, await opened.page.screenshot({ type: 'png' }));
  process.stdout.write(`${out}\n`);
} finally {
  await opened.close();
}
