import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { loadTrainConfig } from '../config/index.js';
import type { BeforeAfterRow } from '../eval/before-after.js';
import { BEFORE_AFTER_FILE } from '../eval/held-out.js';
import { InputError } from '../io/errors.js';
import { loadReportInput, readBeforeAfter, writeReport } from '../report/run-report.js';
import { listCheckpoints } from '../runtime/run-folder.js';
import { dryRun, trainFromConfig } from '../train/run.js';
import { formatRunSummary } from '../train/summary.js';

interface TrainCliOptions {
  set: string[];
  resume?: string | boolean;
  dryRun?: boolean;
}

/** The run's before-after.json when this run wrote it (after its last checkpoint), not one left by an earlier run. */
function freshBeforeAfter(runDir: string): BeforeAfterRow[] | undefined {
  const file = path.join(runDir, BEFORE_AFTER_FILE);
  const written = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
  const last = listCheckpoints(runDir).at(-1);
  if (written === undefined || last === undefined || written < fs.statSync(last.dir).mtimeMs) return undefined;
  return readBeforeAfter(file);
}

export function registerTrain(program: Command): void {
  // --resume and --no-resume set the same value and the last one would silently win
  const given = new Set<string>();
  program
    .command('train')
    .description('QLoRA fine-tuning from a YAML config; resumes from the latest checkpoint in output.dir')
    .argument('<config>', 'training config (YAML); see configs/ and the README config reference')
    .option('--set <key=value>', 'override a config key, e.g. --set training.max_steps=10 (repeatable)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--resume <checkpoint>', 'resume from this checkpoint folder')
    .option('--no-resume', 'start over even if output.dir holds checkpoints')
    .option('--dry-run', 'check the config, model and data, print the data statistics, one block as the model sees it and the memory estimate, then exit without training or writing anything')
    .on('option:resume', () => given.add('--resume'))
    .on('option:no-resume', () => given.add('--no-resume'))
    .action(async (configFile: string, opts: TrainCliOptions) => {
      if (given.size === 2) {
        throw new InputError('--resume and --no-resume together: give --resume CHECKPOINT to continue from it, or --no-resume to start over');
      }
      if (opts.dryRun) {
        if (given.size > 0) throw new InputError(`--dry-run trains nothing, so ${[...given].join(' and ')} has no effect; leave it out`);
        process.stdout.write(`${await dryRun(configFile, { overrides: opts.set })}\n`);
        return;
      }
      const summary = await trainFromConfig(configFile, {
        overrides: opts.set,
        ...(opts.resume === false ? { resume: false as const } : typeof opts.resume === 'string' ? { resume: opts.resume } : {}),
      });
      if (summary.losses.length === 0) {
        process.stderr.write(`nothing to train: the run in this output folder is already at step ${summary.steps}\n`);
        return;
      }
      const runDir = loadTrainConfig(configFile, opts.set).output.dir;
      const report = loadReportInput(runDir);
      const reportFile = await writeReport(runDir, report);
      const beforeAfter = freshBeforeAfter(runDir);
      process.stdout.write(`${formatRunSummary({
        outcome: summary, runDir, configFile, overrides: opts.set, reportFile,
        entries: report.entries,
        checkpoints: listCheckpoints(runDir).map((c) => c.dir),
        ...(summary.adapterDir !== undefined ? { adapterDir: summary.adapterDir } : {}),
        ...(beforeAfter !== undefined ? { beforeAfter } : {}),
      })}\n`);
      if (summary.interrupted) process.exitCode = summary.interrupted === 'SIGINT' ? 130 : 143;
    });
}
