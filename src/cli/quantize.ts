import { InvalidArgumentError, Option, type Command } from 'commander';
import { quantizeModel } from '../export/quantized-model.js';
import type { OutputFolderMessages } from '../io/output-folder.js';
import type { ComputeDtype } from '../quant/bnb-format.js';
import { validateBlocksize } from '../quant/nf4.js';
import { DEFAULT_QUANTIZATION } from '../quant/options.js';
import { RWKV_RESCALE_NOTICE } from '../quant/write-checkpoint.js';
import { intOption } from './options.js';

interface QuantizeCliOptions {
  out: string;
  blocksize: number;
  doubleQuant: boolean;
  skipModules: string[];
  computeDtype: ComputeDtype;
  maxShardMib: number;
  revision?: string;
  force?: boolean;
  json?: boolean;
}

/** How quantize words its refusals of --out. */
const OUT_MESSAGES: OutputFolderMessages = {
  notFolder: (out) => `--out ${out}: exists and is not a folder`,
  replacesInput: (out, input) => `--out ${out}: would replace the model folder ${input}; choose another output folder`,
  notEmpty: (out) => `--out ${out}: the folder exists and is not empty; pass --force to replace it`,
};

/** commander parser of --blocksize: a power of two from 32 to 4096. */
export function blocksizeOption(v: string): number {
  const n = intOption('--blocksize', 1)(v);
  try {
    validateBlocksize(n, '--blocksize');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return n;
}

/** commander parser of --skip-modules: a comma-separated list. */
export function listOption(v: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('--skip-modules needs at least one module name');
  return items;
}

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('write a bitsandbytes 4-bit (NF4) safetensors checkpoint of a model, tensor by tensor')
    .argument('<model>', 'local model folder or hub repo id (org/name)')
    .requiredOption('--out <dir>', 'output folder (created; must not exist or be empty unless --force)')
    .option('--blocksize <n>', 'values per absmax block: a power of two from 32 to 4096', blocksizeOption, DEFAULT_QUANTIZATION.blocksize)
    .addOption(new Option('--no-double-quant', 'keep the absmax values in float32 (4.5 instead of 4.127 bits per parameter)').default(DEFAULT_QUANTIZATION.doubleQuant))
    .option('--skip-modules <names>', 'comma-separated linears to keep in float (a path or a name suffix)', listOption, [])
    .addOption(new Option('--compute-dtype <dtype>', 'compute dtype recorded for transformers (bnb_4bit_compute_dtype in config.json)').choices(['bfloat16', 'float16', 'float32']).default('bfloat16'))
    .option('--max-shard-mib <n>', 'largest weight file in MiB (the 4-bit data of one file is held in memory while it is written); more gives shards and an index', intOption('--max-shard-mib', 1), 2048)
    .option('--revision <rev>', 'hub branch, tag or commit')
    .option('--force', 'replace a non-empty --out folder')
    .option('--json', 'print the summary as one JSON object')
    .action(async (model: string, opts: QuantizeCliOptions) => {
      await quantizeCommand(model, opts);
    });
}

async function quantizeCommand(model: string, opts: QuantizeCliOptions): Promise<void> {
  const started = performance.now();
  const progress = !opts.json && process.stderr.isTTY
    ? (done: number, total: number): void => void process.stderr.write(`\rquantizing linear layers ${done}/${total}`)
    : undefined;
  const { summary, floatLinears, files, rwkvRescaleConflict } = await quantizeModel(model, {
    out: opts.out, computeDtype: opts.computeDtype, maxShardBytes: opts.maxShardMib * 2 ** 20,
    quantization: { bits: 4, blocksize: opts.blocksize, doubleQuant: opts.doubleQuant, skipModules: opts.skipModules },
    ...(opts.revision !== undefined ? { revision: opts.revision } : {}), force: opts.force === true, progress: !opts.json,
    ...(progress ? { onProgress: progress } : {}), outMessages: OUT_MESSAGES,
  });
  if (progress) process.stderr.write('\n');
  if (rwkvRescaleConflict) process.stderr.write(`ditty: notice: ${RWKV_RESCALE_NOTICE}\n`);
  const bits = summary.quantizedParameters === 0 ? 0 : (8 * summary.quantizedBytes) / summary.quantizedParameters;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({
      model, out: opts.out, quantized_linears: summary.quantizedLinears, quantized_parameters: summary.quantizedParameters,
      quantized_bytes: summary.quantizedBytes, bits_per_parameter: bits, float_linears: floatLinears,
      copied_tensors: summary.copiedTensors, bytes_before: summary.bytesBefore, bytes_after: summary.bytesAfter, files,
      blocksize: opts.blocksize, double_quant: opts.doubleQuant, compute_dtype: opts.computeDtype,
      seconds: (performance.now() - started) / 1000,
    })}\n`);
    return;
  }
  const fmt = (n: number): string => n.toLocaleString('en-US');
  process.stdout.write([
    `quantized ${summary.quantizedLinears} linear layers to NF4 (blocksize ${opts.blocksize}, ${opts.doubleQuant ? 'double quant' : 'no double quant'}, compute dtype ${opts.computeDtype})`,
    `  kept in float: ${floatLinears.length > 0 ? floatLinears.join(', ') : 'none'}`,
    `  quantized linears: ${fmt(summary.quantizedParameters)} parameters in ${fmt(summary.quantizedBytes)} bytes, ${bits.toFixed(4)} bits per parameter`,
    `  copied as stored: ${summary.copiedTensors} tensors (biases, embeddings, norms, head, ...)`,
    `  weights: ${fmt(summary.bytesBefore)} bytes before, ${fmt(summary.bytesAfter)} bytes after (${((100 * summary.bytesAfter) / summary.bytesBefore).toFixed(1)}%)`,
    `wrote ${opts.out}: ${files.join(', ')} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    '',
  ].join('\n'));
}
