import type { Command } from 'commander';
import { envReport, formatEnv } from '../env/report.js';

export function registerEnv(program: Command): void {
  program
    .command('env')
    .description('versions, the engines available here (and why not), CPU features, threads, GPU and driver')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const r = envReport(program.version() ?? 'unknown');
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${formatEnv(r)}\n`);
    });
}
