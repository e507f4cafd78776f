import * as path from 'node:path';
import type { Command } from 'commander';
import { LOSS_CHART, lossChart } from '../report/html.js';
import { svgToPng } from '../report/png.js';
import { loadReportInput, writeReport } from '../report/run-report.js';

interface ReportCliOptions {
  png?: boolean;
}

export const LOSS_PNG = 'loss.png';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('(re)write report.html in a run folder from its metrics.jsonl (charts, config, data statistics, samples)')
    .argument('<run>', 'run folder (output.dir of a training config)')
    .option('--png', `also write the loss chart as ${LOSS_PNG} (needs a headless chromium at /usr/bin/chromium)`)
    .action(async (run: string, opts: ReportCliOptions) => {
      const input = loadReportInput(run);
      const file = await writeReport(run, input);
      process.stdout.write(`${file}\n`);
      if (opts.png) {
        const png = path.join(run, LOSS_PNG);
        await svgToPng(lossChart(input), LOSS_CHART.width, LOSS_CHART.height, png);
        process.stdout.write(`${png}\n`);
      }
    });
}
