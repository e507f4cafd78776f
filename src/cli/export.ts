import { InvalidArgumentError, Option, type Command } from 'commander';
import { exportAdapter } from '../export/adapter-export.js';
import { EXPORT_DTYPES, exportMerged, type ExportDtype } from '../export/merged-export.js';
import { formatBytes } from '../hub/progress.js';
import { InputError } from '../io/errors.js';

interface ExportOptions {
  adapter?: string;
  merged?: string;
  dtype?: ExportDtype;
  base?: string;
  revision?: string;
  shardSize: number;
  force?: boolean;
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "2GB", "500MB", "1.5GiB" or a plain byte count (KB/MB/GB are powers of 1000, as in transformers). */
export function parseByteSize(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(bytes >= 1)) throw new InvalidArgumentError(`--shard-size must be a size such as 2GB, 500MB or 1GiB, got "${v}"`);
  return bytes;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write a training checkpoint as a PEFT adapter folder, or merged into its base model as a Hugging Face model folder')
    .argument('<source>', 'run folder (its latest checkpoint), checkpoint folder or PEFT adapter folder')
    .option('--adapter <out>', 'write the PEFT adapter files (adapter_config.json, adapter_model.safetensors) into this folder')
    .option('--merged <out>', 'write the base model with the adapter merged into its weights into this folder')
    .addOption(new Option('--dtype <dtype>', "dtype of the merged weights (default: the base's torch_dtype, else bf16)").choices(EXPORT_DTYPES))
    .option('--base <model>', "base model folder or hub repo id (default: the adapter's base_model_name_or_path)")
    .option('--revision <rev>', 'hub branch, tag or commit of the base model')
    .addOption(new Option('--shard-size <size>', 'largest safetensors shard of the merged model').argParser(parseByteSize).default(2e9, '2GB'))
    .option('--force', 'replace a non-empty output folder')
    .action(async (source: string, opts: ExportOptions) => {
      if ((opts.adapter === undefined) === (opts.merged === undefined)) throw new InputError('give exactly one of --adapter OUT or --merged OUT');
      if (opts.adapter !== undefined) {
        const mergedOnly = (['dtype', 'base', 'revision'] as const).filter((k) => opts[k] !== undefined);
        if (mergedOnly.length > 0) throw new InputError(`--${mergedOnly[0]} applies to --merged only`);
        const r = await exportAdapter(source, opts.adapter, { force: opts.force ?? false });
        const files = r.files.map((f) => `${f.name} (${formatBytes(f.bytes)})`).join(', ');
        process.stdout.write(`exported the adapter of ${r.source} (${r.modules} LoRA modules) to ${r.folder}: ${files}\n`);
        return;
      }
      const r = await exportMerged(source, opts.merged!, {
        ...(opts.base !== undefined ? { base: opts.base } : {}),
        ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
        ...(opts.dtype !== undefined ? { dtype: opts.dtype } : {}),
        maxShardBytes: opts.shardSize,
        force: opts.force ?? false,
        notice: (message) => process.stderr.write(`ditty: notice: ${message}\n`),
        onTensor: tensorProgress(),
      });
      process.stdout.write(`merged ${r.mergedLinears} LoRA linears of ${r.adapter} into ${r.base}: ${r.tensors} tensors, `
        + `${formatBytes(r.bytes)} of ${r.dtype} in ${r.files.filter((f) => f.endsWith('.safetensors')).length} safetensors file(s) -> ${r.folder}\n`);
    });
}

/** Progress on stderr: one updating line on a terminal, otherwise a line every 10%. */
function tensorProgress(): (index: number, total: number) => void {
  const tty = process.stderr.isTTY;
  let shown = -1;
  return (index, total) => {
    const done = index + 1;
    const tenth = Math.floor((10 * done) / total);
    if (tty) process.stderr.write(`\rwriting tensor ${done}/${total}${done === total ? '\n' : ''}`);
    else if (tenth !== shown) process.stderr.write(`writing tensor ${done}/${total}\n`);
    shown = tenth;
  };
}
