import type { Command } from 'commander';
import { trainFromConfig } from '../train/run.js';

interface TrainCliOptions {
  set: string[];
  resume?: string | boolean;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('QLoRA fine-tuning from a YAML config; resumes from the latest checkpoint in output.dir')
    .argument('<config>', 'training config (YAML); see configs/ and the README config reference')
    .option('--set <key=value>', 'override a config key, e.g. --set training.max_steps=10 (repeatable)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--resume <checkpoint>', 'resume from this checkpoint folder')
    .option('--no-resume', 'start over even if output.dir holds checkpoints')
    .action(async (configFile: string, opts: TrainCliOptions) => {
      const summary = await trainFromConfig(configFile, {
        overrides: opts.set,
        ...(opts.resume === false ? { resume: false as const } : typeof opts.resume === 'string' ? { resume: opts.resume } : {}),
      });
      const lines = summary.losses.length === 0
        ? [`nothing to train: the run in this output folder is already at step ${summary.steps}`]
        : [
          `trained steps ${summary.startStep + 1}-${summary.steps}: final loss ${summary.finalLoss.toFixed(4)}`
            + `${summary.valLoss !== undefined ? `, validation loss ${summary.valLoss.toFixed(4)}` : ''}`,
          `${summary.tokens.toLocaleString('en-US')} tokens in ${summary.seconds.toFixed(1)} s`,
          summary.lastCheckpoint ? `checkpoint: ${summary.lastCheckpoint}` : 'no checkpoint written',
        ];
      process.stderr.write(`${lines.join('\n')}\n`);
      if (summary.interrupted) process.exitCode = summary.interrupted === 'SIGINT' ? 130 : 143;
    });
}
