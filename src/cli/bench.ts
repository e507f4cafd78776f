import { Option, type Command } from 'commander';
import { benchTraining, formatBench, type BenchOptions } from '../bench/train-bench.js';
import { modelShapeNames } from '../bench/shapes.js';
import type { Backend } from '../engine/choice.js';
import type { Checkpointing } from '../engine/engine.js';
import { backendOption, checkpointingOption, intOption } from './options.js';

interface BenchCliOptions {
  model: string;
  blockSize: number;
  batchSize: number;
  backend: Backend;
  steps: number;
  warmup: number;
  bits: string;
  checkpointing: Checkpointing;
  gradientCheckpointing?: boolean;
  loraR: number;
  json?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time QLoRA training steps of a model shape with random weights (no download)')
    .addOption(new Option('--model <shape>', `a shape (${modelShapeNames().join(', ')}) or a config.json path`).default('rwkv-169m'))
    .option('--block-size <n>', 'tokens per sequence', intOption('--block-size', 2), 512)
    .option('--batch-size <n>', 'sequences per step', intOption('--batch-size', 1), 1)
    .addOption(new Option('--backend <name>', 'engine: auto, cpu (native), wasm, js, tensorflow or cuda').default('auto').argParser(backendOption))
    .option('--steps <n>', 'timed steps', intOption('--steps', 1), 3)
    .option('--warmup <n>', 'untimed steps before them', intOption('--warmup', 0), 1)
    .addOption(new Option('--bits <n>', '4 (NF4 base) or 16 (float base)').choices(['4', '16']).default('4'))
    .addOption(new Option('--checkpointing <policy>', 'what backward recomputes: none, selective or full').default('none').argParser(checkpointingOption))
    .option('--gradient-checkpointing', 'the same as --checkpointing full')
    .option('--lora-r <n>', 'LoRA rank', intOption('--lora-r', 1), 8)
    .option('--json', 'print the figures as one JSON object')
    .action(async (opts: BenchCliOptions) => {
      const o: BenchOptions = {
        model: opts.model, blockSize: opts.blockSize, batchSize: opts.batchSize, backend: opts.backend, steps: opts.steps, warmup: opts.warmup,
        bits: opts.bits === '16' ? 16 : 4, checkpointing: opts.gradientCheckpointing === true ? 'full' : opts.checkpointing, loraR: opts.loraR,
      };
      const r = await benchTraining(o);
      process.stdout.write(opts.json ? `${JSON.stringify({ ...r, options: o })}\n` : `${formatBench(r, o)}\n`);
    });
}
