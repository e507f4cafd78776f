import { Command, CommanderError } from 'commander';
import { fileSystemError, InputError } from '../io/errors.js';
import { registerBench } from './bench.js';
import { registerEnv } from './env.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerGenerate } from './generate.js';
import { registerInspect } from './inspect.js';
import { registerQuantize } from './quantize.js';
import { registerReport } from './report.js';
import { registerTrain } from './train.js';

export function buildProgram(): Command {
  const program = new Command('ditty')
    .description('QLoRA fine-tuning of RWKV-4 and GPT-NeoX language models, in TypeScript')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInspect(program);
  registerEval(program);
  registerGenerate(program);
  registerQuantize(program);
  registerTrain(program);
  registerReport(program);
  registerExport(program);
  registerBench(program);
  registerEnv(program);
  for (const cmd of program.commands) cmd.exitOverride().showHelpAfterError('(run with --help for usage)');
  return program;
}

/** Runs the CLI and returns the process exit code. Input errors and file system failures print one line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    // a command may set process.exitCode (e.g. train stopped by a signal)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const user = err instanceof InputError ? err : fileSystemError(err);
    if (user !== undefined) {
      process.stderr.write(`ditty: error: ${user.message}\n`);
      return 1;
    }
    process.stderr.write(`ditty: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 70;
  }
}
