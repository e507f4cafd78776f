import { Option, type Command } from 'commander';
import { inspectModel, type InspectOptions } from '../inspect/inspect-model.js';
import { DEFAULT_QUANTIZATION } from '../quant/options.js';
import { blocksizeOption, listOption } from './quantize.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('print the module tree, every linear layer with its [out, in] shape, and parameter counts; for 4-bit models, where the bytes go')
    .argument('<model>', 'local model folder or hub repo id (org/name)')
    .option('--revision <rev>', 'hub branch, tag or commit')
    .option('--json', 'print one JSON object instead of text')
    .addOption(new Option('--quantize <bits>', 'report the storage `ditty quantize` would give a float model').choices(['4']))
    .option('--blocksize <n>', 'with --quantize: values per absmax block', blocksizeOption, DEFAULT_QUANTIZATION.blocksize)
    .addOption(new Option('--no-double-quant', 'with --quantize: keep the absmax values in float32').default(DEFAULT_QUANTIZATION.doubleQuant))
    .option('--skip-modules <names>', 'with --quantize: comma-separated linears kept in float', listOption, [])
    .action(async (model: string, opts: InspectOptions) => {
      process.stdout.write(await inspectModel(model, opts));
    });
}
