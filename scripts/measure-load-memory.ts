/**
 * Peak memory of loading a sharded checkpoint into Float32Arrays through openCheckpoint.
 *
 *   npx tsc -p . && node dist/scripts/measure-load-memory.js [--gib 1] [--shard-mib 256]
 *
 * For safetensors and torch .bin shards, each in F32 and BF16, it writes a checkpoint whose tensors
 * take --gib GiB once converted to float32, then loads every tensor in a fresh child process and
 * keeps them all. Reported: bytes kept, peak RSS (getrusage maxRSS), their ratio, and seconds per GB
 * of checkpoint file read (the files were just written, so they are read from the page cache).
 * Goal: peak RSS < 1.5x the bytes kept. The temporary folder is removed at the end.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { DTYPE_SIZES, numel } from '../src/io/dtypes.js';
import { writeShardedSafetensors, type TensorToWrite } from '../src/io/safetensors-writer.js';
import { torchSaveStateDict } from '../test/helpers/torch-save.js';

type Format = 'safetensors' | 'torch';
type FloatType = 'F32' | 'BF16';

interface ChildReport {
  tensors: number;
  keptBytes: number;
  fileBytes: number;
  baselineRss: number;
  peakRss: number;
  seconds: number;
}

const COMMAND = 'npx tsc -p . && node dist/scripts/measure-load-memory.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A layer-like mix: per layer two [H, H] matrices, two [4H, H]-sized ones and small vectors. */
function layout(gib: number): { name: string; shape: number[] }[] {
  const h = 2048;
  const perLayer = 2 * h * h + 2 * 4 * h * h + 4 * h;
  const layers = Math.max(1, Math.round((gib * 2 ** 30) / 4 / perLayer));
  const out: { name: string; shape: number[] }[] = [];
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}`;
    out.push({ name: `${p}.ln1.weight`, shape: [h] }, { name: `${p}.ln1.bias`, shape: [h] });
    out.push({ name: `${p}.attn.qkv.weight`, shape: [h, h] }, { name: `${p}.attn.out.weight`, shape: [h, h] });
    out.push({ name: `${p}.ln2.weight`, shape: [h] }, { name: `${p}.ln2.bias`, shape: [h] });
    out.push({ name: `${p}.mlp.up.weight`, shape: [4 * h, h] }, { name: `${p}.mlp.down.weight`, shape: [h, 4 * h] });
  }
  return out;
}

function tensors(gib: number, dtype: FloatType): TensorToWrite[] {
  return layout(gib).map(({ name, shape }) => ({
    name, dtype, shape,
    data: () => {
      const bytes = new Uint8Array(numel(shape) * DTYPE_SIZES[dtype]);
      for (let i = 0; i < bytes.length; i += 65536) randomFillSync(bytes, i, Math.min(65536, bytes.length - i));
      return bytes;
    },
  }));
}

async function writeTorchShards(dir: string, all: TensorToWrite[], maxShardBytes: number): Promise<void> {
  const groups: TensorToWrite[][] = [[]];
  let size = 0;
  for (const t of all) {
    const n = numel(t.shape) * DTYPE_SIZES[t.dtype];
    if (groups[groups.length - 1]!.length && size + n > maxShardBytes) { groups.push([]); size = 0; }
    groups[groups.length - 1]!.push(t);
    size += n;
  }
  const weightMap: Record<string, string> = {};
  for (const [i, g] of groups.entries()) {
    const file = `pytorch_model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.bin`;
    await torchSaveStateDict(path.join(dir, file), g, { container: 'dict' });
    for (const t of g) weightMap[t.name] = file;
  }
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

async function child(folder: string): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  const fileBytes = fs.readdirSync(folder).reduce((s, f) => s + fs.statSync(path.join(folder, f)).size, 0);
  const t0 = performance.now();
  const src = await openCheckpoint(folder);
  const kept: Float32Array[] = [];
  let keptBytes = 0;
  for (const name of src.names()) {
    const values = src.readFloat32(name);
    kept.push(values);
    keptBytes += values.byteLength;
  }
  const seconds = (performance.now() - t0) / 1000;
  src.close();
  const report: ChildReport = {
    tensors: kept.length, keptBytes, fileBytes, baselineRss, seconds,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(report));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!);
  const gib = arg('--gib', 1);
  const maxShardBytes = arg('--shard-mib', 256) * 2 ** 20;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-loadmem-'));
  const self = fileURLToPath(import.meta.url);
  const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
  console.log(`reproduce: ${COMMAND} --gib ${gib} --shard-mib ${maxShardBytes / 2 ** 20}`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, temp ${tmp}`);
  console.log('format       dtype  shards  file      kept      baseline  peak RSS  ratio  s/GB(file)');
  try {
    for (const format of ['safetensors', 'torch'] as Format[]) {
      for (const dtype of ['F32', 'BF16'] as FloatType[]) {
        const dir = path.join(tmp, `${format}-${dtype}`);
        fs.mkdirSync(dir);
        const all = tensors(gib, dtype);
        if (format === 'safetensors') await writeShardedSafetensors(dir, all, { maxShardBytes });
        else await writeTorchShards(dir, all, maxShardBytes);
        const shards = fs.readdirSync(dir).filter((f) => !f.endsWith('.json')).length;
        const run = spawnSync(process.execPath, [self, '--child', dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
        fs.rmSync(dir, { recursive: true, force: true });
        if (run.status !== 0) throw new Error(`child failed (${run.status}): ${run.stderr}`);
        const r = JSON.parse(run.stdout) as ChildReport;
        console.log([
          format.padEnd(12), dtype.padEnd(6), String(shards).padEnd(7), mib(r.fileBytes).padEnd(9), mib(r.keptBytes).padEnd(9),
          mib(r.baselineRss).padEnd(9), mib(r.peakRss).padEnd(9), (r.peakRss / r.keptBytes).toFixed(3).padEnd(6),
          (r.seconds / (r.fileBytes / 1e9)).toFixed(2),
        ].join(' '));
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
